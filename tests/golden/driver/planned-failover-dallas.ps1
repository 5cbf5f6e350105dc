### clock
# lyncdr driver clock v1
$ErrorActionPreference = 'Stop'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
$epoch = New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc)
Write-LyncdrFrame 'RESULT' @{ nowMs = [long]([DateTime]::UtcNow - $epoch).TotalMilliseconds; speed = 1 }

### cms-export-configuration/pool01.sea.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
# request: golden/cms-export-configuration/pool01.sea.contoso.com 120000
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Export-CsConfiguration -FileName 'C:\lyncdr\backup\CsConfiguration-pool01.dal.contoso.com-to-pool01.sea.contoso.com.zip'
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### cms-export-lis-configuration/pool01.sea.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
# request: golden/cms-export-lis-configuration/pool01.sea.contoso.com 120000
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Export-CsLisConfiguration -FileName 'C:\lyncdr\backup\CsLisConfiguration-pool01.dal.contoso.com-to-pool01.sea.contoso.com.zip'
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### cms-failover/pool01.sea.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
# request: golden/cms-failover/pool01.sea.contoso.com 120000
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Invoke-CsManagementServerFailover -Confirm:$false
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### wait-cms-replication/pool01.sea.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Get-CsManagementStoreReplicationStatus
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### edge-next-hop/edge01.dal.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
# request: golden/edge-next-hop/edge01.dal.contoso.com 120000
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Set-CsEdgeServer -Identity EdgeServer:edge01.dal.contoso.com -Registrar Registrar:pool01.sea.contoso.com -Confirm:$false
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### wait-cms-replication/failover/pool01.dal.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Get-CsManagementStoreReplicationStatus
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### rgs-routine-export/pool01.dal.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.dal.contoso.com
# request: golden/rgs-routine-export/pool01.dal.contoso.com 120000
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Export-CsRgsConfiguration -Source service:ApplicationServer:pool01.dal.contoso.com -FileName '\\fs01.contoso.com\lyncdr\rgs\pool01.dal.contoso.com-routine.zip' -Confirm:$false
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### pool-failover/pool01.dal.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
# request: golden/pool-failover/pool01.dal.contoso.com 120000
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Invoke-CsPoolFailOver -PoolFqdn pool01.dal.contoso.com -Confirm:$false
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### rgs-import/pool01.sea.contoso.com/pool01.dal.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
# request: golden/rgs-import/pool01.sea.contoso.com/pool01.dal.contoso.com 120000
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Import-CsRgsConfiguration -Destination service:ApplicationServer:pool01.sea.contoso.com -FileName '\\fs01.contoso.com\lyncdr\rgs\pool01.dal.contoso.com-routine.zip' -Confirm:$false
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}

### rgs-routine-export/pool01.sea.contoso.com
# lyncdr driver invoke v1
# run-on: pool pool01.sea.contoso.com
# request: golden/rgs-routine-export/pool01.sea.contoso.com 120000
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
$ConfirmPreference = 'None'
function Write-LyncdrFrame([string]$Kind, $Value) {
    $json = ConvertTo-Json -InputObject $Value -Depth 8 -Compress
    if ($json -eq $null) { $json = 'null' }
    [Console]::Out.WriteLine('#LYNCDR-' + $Kind + ' ' + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes([string]$json)))
}
function ConvertTo-LyncdrData($Value, [int]$Depth = 0) {
    if ($Value -eq $null) { return $null }
    # -and and -or bind equally in PowerShell, left to right: parenthesise.
    if ($Value -is [string] -or $Value -is [decimal] -or ($Value -is [ValueType] -and $Value.GetType().IsPrimitive)) { return $Value }
    if ($Value -is [Enum]) { return $Value.ToString() }
    if ($Value -is [DateTime]) { return [long]($Value.ToUniversalTime() - (New-Object DateTime 1970, 1, 1, 0, 0, 0, ([DateTimeKind]::Utc))).TotalMilliseconds }
    if ($Value -is [TimeSpan] -or $Value -is [Guid] -or $Value -is [Uri] -or $Value -is [Version]) { return $Value.ToString() }
    if ($Depth -ge 8) { return [string]$Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $h = @{}
        foreach ($k in $Value.Keys) { $h[[string]$k] = ConvertTo-LyncdrData $Value[$k] ($Depth + 1) }
        return $h
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-LyncdrData $item ($Depth + 1))) }
        return ,$list.ToArray()
    }
    $type = $Value.GetType()
    if ($Depth -gt 0 -and $type -ne [System.Management.Automation.PSCustomObject] -and $type.GetMethod('ToString', [Type[]]@()).DeclaringType -ne [object]) { return $Value.ToString() }
    $h = [ordered]@{}
    foreach ($p in $Value.PSObject.Properties) {
        if ($p.MemberType -notmatch 'Property') { continue }
        try { $v = $p.Value } catch { $v = $null }
        $h[$p.Name] = ConvertTo-LyncdrData $v ($Depth + 1)
    }
    return $h
}
try {
    if (-not (Get-Module -Name SkypeForBusiness, Lync)) {
        if (Get-Module -ListAvailable -Name SkypeForBusiness) { Import-Module SkypeForBusiness } else { Import-Module Lync }
    }
    $lyncdrOut = Export-CsRgsConfiguration -Source service:ApplicationServer:pool01.sea.contoso.com -FileName '\\fs01.contoso.com\lyncdr\rgs\pool01.sea.contoso.com-routine.zip' -Confirm:$false
    Write-LyncdrFrame 'RESULT' (ConvertTo-LyncdrData $lyncdrOut)
} catch {
    Write-LyncdrFrame 'ERROR' @{ message = $_.Exception.Message; category = [string]$_.CategoryInfo.Category; errorId = [string]$_.FullyQualifiedErrorId }
}
