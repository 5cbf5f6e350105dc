### wrapper
# lyncdr driver run-as v1
$ErrorActionPreference = 'Stop'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
$lyncdrSpool = 'C:\ProgramData\lyncdr\spool'
$lyncdrTask = 'lyncdr-runas'
$lyncdrTimeout = 3600
$lyncdrInner = 'IyBseW5jZHIgZHJpdmVyIGludm9rZSB2MQojIHJ1bi1vbjogcG9vbCBwb29sMDEuc2VhLmNvbnRvc28uY29tCiMgcmVxdWVzdDogZ29sZGVuL3Bvb2wtZmFpbG92ZXIvcG9vbDAxLmRhbC5jb250b3NvLmNvbSAxMjAwMDAKJEVycm9yQWN0aW9uUHJlZmVyZW5jZSA9ICdTdG9wJwokUHJvZ3Jlc3NQcmVmZXJlbmNlID0gJ1NpbGVudGx5Q29udGludWUnCiRDb25maXJtUHJlZmVyZW5jZSA9ICdOb25lJwpmdW5jdGlvbiBXcml0ZS1MeW5jZHJGcmFtZShbc3RyaW5nXSRLaW5kLCAkVmFsdWUpIHsKICAgICRqc29uID0gQ29udmVydFRvLUpzb24gLUlucHV0T2JqZWN0ICRWYWx1ZSAtRGVwdGggOCAtQ29tcHJlc3MKICAgIGlmICgkanNvbiAtZXEgJG51bGwpIHsgJGpzb24gPSAnbnVsbCcgfQogICAgW0NvbnNvbGVdOjpPdXQuV3JpdGVMaW5lKCcjTFlOQ0RSLScgKyAkS2luZCArICcgJyArIFtDb252ZXJ0XTo6VG9CYXNlNjRTdHJpbmcoW1RleHQuRW5jb2RpbmddOjpVVEY4LkdldEJ5dGVzKFtzdHJpbmddJGpzb24pKSkKfQpmdW5jdGlvbiBDb252ZXJ0VG8tTHluY2RyRGF0YSgkVmFsdWUsIFtpbnRdJERlcHRoID0gMCkgewogICAgaWYgKCRWYWx1ZSAtZXEgJG51bGwpIHsgcmV0dXJuICRudWxsIH0KICAgICMgLWFuZCBhbmQgLW9yIGJpbmQgZXF1YWxseSBpbiBQb3dlclNoZWxsLCBsZWZ0IHRvIHJpZ2h0OiBwYXJlbnRoZXNpc2UuCiAgICBpZiAoJFZhbHVlIC1pcyBbc3RyaW5nXSAtb3IgJFZhbHVlIC1pcyBbZGVjaW1hbF0gLW9yICgkVmFsdWUgLWlzIFtWYWx1ZVR5cGVdIC1hbmQgJFZhbHVlLkdldFR5cGUoKS5Jc1ByaW1pdGl2ZSkpIHsgcmV0dXJuICRWYWx1ZSB9CiAgICBpZiAoJFZhbHVlIC1pcyBbRW51bV0pIHsgcmV0dXJuICRWYWx1ZS5Ub1N0cmluZygpIH0KICAgIGlmICgkVmFsdWUgLWlzIFtEYXRlVGltZV0pIHsgcmV0dXJuIFtsb25nXSgkVmFsdWUuVG9Vbml2ZXJzYWxUaW1lKCkgLSAoTmV3LU9iamVjdCBEYXRlVGltZSAxOTcwLCAxLCAxLCAwLCAwLCAwLCAoW0RhdGVUaW1lS2luZF06OlV0YykpKS5Ub3RhbE1pbGxpc2Vjb25kcyB9CiAgICBpZiAoJFZhbHVlIC1pcyBbVGltZVNwYW5dIC1vciAkVmFsdWUgLWlzIFtHdWlkXSAtb3IgJFZhbHVlIC1pcyBbVXJpXSAtb3IgJFZhbHVlIC1pcyBbVmVyc2lvbl0pIHsgcmV0dXJuICRWYWx1ZS5Ub1N0cmluZygpIH0KICAgIGlmICgkRGVwdGggLWdlIDgpIHsgcmV0dXJuIFtzdHJpbmddJFZhbHVlIH0KICAgIGlmICgkVmFsdWUgLWlzIFtTeXN0ZW0uQ29sbGVjdGlvbnMuSURpY3Rpb25hcnldKSB7CiAgICAgICAgJGggPSBAe30KICAgICAgICBmb3JlYWNoICgkayBpbiAkVmFsdWUuS2V5cykgeyAkaFtbc3RyaW5nXSRrXSA9IENvbnZlcnRUby1MeW5jZHJEYXRhICRWYWx1ZVska10gKCREZXB0aCArIDEpIH0KICAgICAgICByZXR1cm4gJGgKICAgIH0KICAgIGlmICgkVmFsdWUgLWlzIFtTeXN0ZW0uQ29sbGVjdGlvbnMuSUVudW1lcmFibGVdKSB7CiAgICAgICAgJGxpc3QgPSBOZXctT2JqZWN0IFN5c3RlbS5Db2xsZWN0aW9ucy5BcnJheUxpc3QKICAgICAgICBmb3JlYWNoICgkaXRlbSBpbiAkVmFsdWUpIHsgW3ZvaWRdJGxpc3QuQWRkKChDb252ZXJ0VG8tTHluY2RyRGF0YSAkaXRlbSAoJERlcHRoICsgMSkpKSB9CiAgICAgICAgcmV0dXJuICwkbGlzdC5Ub0FycmF5KCkKICAgIH0KICAgICR0eXBlID0gJFZhbHVlLkdldFR5cGUoKQogICAgaWYgKCREZXB0aCAtZ3QgMCAtYW5kICR0eXBlIC1uZSBbU3lzdGVtLk1hbmFnZW1lbnQuQXV0b21hdGlvbi5QU0N1c3RvbU9iamVjdF0gLWFuZCAkdHlwZS5HZXRNZXRob2QoJ1RvU3RyaW5nJywgW1R5cGVbXV1AKCkpLkRlY2xhcmluZ1R5cGUgLW5lIFtvYmplY3RdKSB7IHJldHVybiAkVmFsdWUuVG9TdHJpbmcoKSB9CiAgICAkaCA9IFtvcmRlcmVkXUB7fQogICAgZm9yZWFjaCAoJHAgaW4gJFZhbHVlLlBTT2JqZWN0LlByb3BlcnRpZXMpIHsKICAgICAgICBpZiAoJHAuTWVtYmVyVHlwZSAtbm90bWF0Y2ggJ1Byb3BlcnR5JykgeyBjb250aW51ZSB9CiAgICAgICAgdHJ5IHsgJHYgPSAkcC5WYWx1ZSB9IGNhdGNoIHsgJHYgPSAkbnVsbCB9CiAgICAgICAgJGhbJHAuTmFtZV0gPSBDb252ZXJ0VG8tTHluY2RyRGF0YSAkdiAoJERlcHRoICsgMSkKICAgIH0KICAgIHJldHVybiAkaAp9CnRyeSB7CiAgICBpZiAoLW5vdCAoR2V0LU1vZHVsZSAtTmFtZSBTa3lwZUZvckJ1c2luZXNzLCBMeW5jKSkgewogICAgICAgIGlmIChHZXQtTW9kdWxlIC1MaXN0QXZhaWxhYmxlIC1OYW1lIFNreXBlRm9yQnVzaW5lc3MpIHsgSW1wb3J0LU1vZHVsZSBTa3lwZUZvckJ1c2luZXNzIH0gZWxzZSB7IEltcG9ydC1Nb2R1bGUgTHluYyB9CiAgICB9CiAgICAkbHluY2RyT3V0ID0gSW52b2tlLUNzUG9vbEZhaWxPdmVyIC1Qb29sRnFkbiBwb29sMDEuZGFsLmNvbnRvc28uY29tIC1EaXNhc3Rlck1vZGUgLUNvbmZpcm06JGZhbHNlCiAgICBXcml0ZS1MeW5jZHJGcmFtZSAnUkVTVUxUJyAoQ29udmVydFRvLUx5bmNkckRhdGEgJGx5bmNkck91dCkKfSBjYXRjaCB7CiAgICBXcml0ZS1MeW5jZHJGcmFtZSAnRVJST1InIEB7IG1lc3NhZ2UgPSAkXy5FeGNlcHRpb24uTWVzc2FnZTsgY2F0ZWdvcnkgPSBbc3RyaW5nXSRfLkNhdGVnb3J5SW5mby5DYXRlZ29yeTsgZXJyb3JJZCA9IFtzdHJpbmddJF8uRnVsbHlRdWFsaWZpZWRFcnJvcklkIH0KfQo='
$id = [guid]::NewGuid().ToString('N')
$script = Join-Path $lyncdrSpool ($id + '.ps1')
$out = Join-Path $lyncdrSpool ($id + '.out')
$done = Join-Path $lyncdrSpool ($id + '.done')
function Withdraw-LyncdrScript([string]$Why) {
    # Unclaimed, it never ran; claimed (renamed by the runner), it may be running.
    try { Remove-Item -LiteralPath $script -ErrorAction Stop } catch { return $false }
    Write-LyncdrFrame 'ERROR' @{ message = $Why + '; the script was withdrawn unrun'; category = 'ResourceUnavailable'; errorId = 'LyncdrRunAsNotRun' }
    return $true
}
try {
    [IO.File]::WriteAllBytes($script + '.tmp', [Convert]::FromBase64String($lyncdrInner))
    Move-Item -LiteralPath ($script + '.tmp') -Destination $script
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = 'cannot write to the run-as spool ' + $lyncdrSpool + ': ' + $_.Exception.Message; category = 'PermissionDenied'; errorId = 'LyncdrRunAsNotRun' }
    return
}
try {
    # Windows Server 2008 R2 (Lync 2013) has no ScheduledTasks module: schtasks.exe there.
    if (Get-Command -Name Start-ScheduledTask -ErrorAction SilentlyContinue) { Start-ScheduledTask -TaskName $lyncdrTask }
    else { schtasks.exe /Run /TN $lyncdrTask | Out-Null; if ($LASTEXITCODE -ne 0) { throw ('schtasks.exe /Run exited with ' + $LASTEXITCODE) } }
} catch {
    if (Withdraw-LyncdrScript ('the scheduled task ' + $lyncdrTask + ' could not be started: ' + $_.Exception.Message)) { return }
}
$deadline = [DateTime]::UtcNow.AddSeconds($lyncdrTimeout)
while (-not (Test-Path -LiteralPath $done)) {
    if ([DateTime]::UtcNow -gt $deadline) {
        if (Withdraw-LyncdrScript ('the scheduled task ' + $lyncdrTask + ' did not take the script within ' + $lyncdrTimeout + ' s')) { return }
        Write-LyncdrFrame 'ERROR' @{ message = 'the scheduled task ' + $lyncdrTask + ' took script ' + $id + ' and has not answered within ' + $lyncdrTimeout + ' s: it may still run'; category = 'OperationTimeout'; errorId = 'LyncdrOutcomeUnknown' }
        return
    }
    Start-Sleep -Milliseconds 200
}
[Console]::Out.Write([IO.File]::ReadAllText($out, [Text.Encoding]::UTF8))
Remove-Item -LiteralPath $out, $done -ErrorAction SilentlyContinue

### runner
# lyncdr run-as runner v1: the action of the scheduled task 'lyncdr-runas'
# powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File <this file>
$ErrorActionPreference = 'Stop'
$lyncdrSpool = 'C:\ProgramData\lyncdr\spool'
foreach ($f in @(Get-ChildItem -LiteralPath $lyncdrSpool -Filter '*.ps1' | Where-Object { $_.Name -notlike '*.running.ps1' })) {
    $id = $f.BaseName
    $claimed = Join-Path $lyncdrSpool ($id + '.running.ps1')
    # Another instance may have claimed it first: then it is theirs.
    try { Move-Item -LiteralPath $f.FullName -Destination $claimed -ErrorAction Stop } catch { continue }
    $out = Join-Path $lyncdrSpool ($id + '.out')
    $p = Start-Process -FilePath powershell.exe -ArgumentList @('-NoProfile', '-NonInteractive', '-ExecutionPolicy', 'Bypass', '-File', $claimed) -RedirectStandardOutput ($out + '.tmp') -RedirectStandardError ($out + '.err') -NoNewWindow -Wait -PassThru
    Move-Item -LiteralPath ($out + '.tmp') -Destination $out -Force
    Set-Content -LiteralPath (Join-Path $lyncdrSpool ($id + '.done')) -Value $p.ExitCode
    Remove-Item -LiteralPath $claimed, ($out + '.err') -ErrorAction SilentlyContinue
}
