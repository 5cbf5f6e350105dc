//! The bad-input campaign of issue 9: every input in `tests/bad_inputs/` (and the ones too big
//! or too strange to commit, generated here at test time) is given to the real binary, the way a
//! user gives it, and must be refused:
//!
//! - within a time limit (a hang is a failure, and the process is killed),
//! - with a non-zero exit code that is not a panic's (101),
//! - with every fragment the case expects in the message (the file or the resource, and the
//!   field), and no `panicked` or backtrace anywhere in the output,
//! - without raw control characters in the error output (a value echoed in a message must not
//!   move the cursor, clear the screen or forge a log line),
//! - with nothing done: `plan` and `demo` print nothing on standard output, `run --manifests`
//!   leaves the log of the `sim serve` it talks to empty, and `sim run` runs no line of a bad
//!   script (every line is refused and no simulated time passes).
//!
//! Each committed file starts with a comment header the runner reads:
//!
//! ```text
//! # kind: manifest | scenario | script | fault
//! # expect: <fragment the error output must contain>   (repeatable)
//! # run: no (why)          manifests only: skip `run --manifests` (the failure needs the topology)
//! # xfail: <why>           a known failure outside this campaign's files: it must still fail
//! # about: <free text>
//! ```
//!
//! A directory in the corpus is a directory of manifests; its header is in `00-case.yaml`
//! (comments only, so the loader reads it as an empty document).
//!
//! Commands per kind:
//! - manifest: `plan --scenario <good> --desired <bad>`, `demo --desired <bad>`, and
//!   `run --manifests <bad> --once --state-dir <tmp> --simulator <url>`;
//! - scenario: `plan --scenario <bad> --desired <good>`, `demo --scenario <bad>`, `sim run
//!   --scenario <bad> --script <good>` and `sim serve --scenario <bad>`;
//! - script: `sim run --scenario <good> --script <bad>` and the same script on standard input;
//! - fault: `demo --fault <the line>`.
//!
//! Run: `cargo test --release --test bad_inputs -- --nocapture` to see the summary table (it is
//! also written to `bad_inputs-summary.txt` in Cargo's test temporary directory).

#[path = "support/processes.rs"]
mod processes;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use processes::SimServe;

const BIN: &str = env!("CARGO_BIN_EXE_lyncdr");
const GOOD_SCENARIO: &str = "examples/two-site/scenario.yaml";
const GOOD_DESIRED: &str = "examples/two-site/desired.yaml";
/// A rehearsal script that runs cleanly on the good scenario.
const GOOD_SCRIPT: &str = "Get-CsPool\n";
/// Longest a refusal may take; anything slower counts as a hang.
const TIMEOUT: Duration = Duration::from_secs(20);
/// For cases known to fail (`xfail`), often by hanging: enough to show they still do.
const XFAIL_TIMEOUT: Duration = Duration::from_secs(3);
/// Output kept per stream (a runaway process must not exhaust the test's memory).
const MAX_CAPTURE: usize = 4 << 20;
/// The committed corpus must stay at least this large.
const MIN_CORPUS: usize = 60;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn corpus_dir() -> PathBuf {
    root().join("tests/bad_inputs")
}

// ---------------------------------------------------------------------------------------------
// Cases

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Manifest,
    Scenario,
    Script,
    Fault,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        match s {
            "manifest" => Some(Kind::Manifest),
            "scenario" => Some(Kind::Scenario),
            "script" => Some(Kind::Script),
            "fault" => Some(Kind::Fault),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Kind::Manifest => "manifest",
            Kind::Scenario => "scenario",
            Kind::Script => "script",
            Kind::Fault => "fault",
        }
    }
}

#[derive(Clone, Debug)]
struct Case {
    /// File name in the corpus, or `generated/<what>`.
    name: String,
    path: PathBuf,
    kind: Kind,
    expect: Vec<String>,
    /// Manifests: also run `run --manifests` against a simulator.
    standalone: bool,
    xfail: Option<String>,
}

impl Case {
    fn new(name: &str, path: PathBuf, kind: Kind, expect: &[&str]) -> Case {
        Case {
            name: name.to_string(),
            path,
            kind,
            expect: expect.iter().map(|s| s.to_string()).collect(),
            standalone: kind == Kind::Manifest,
            xfail: None,
        }
    }
}

/// Reads the comment header of a corpus file; `Err` says what is wrong with it.
fn read_header(name: &str, path: &Path, text: &str) -> Result<Case, String> {
    let mut kind = None;
    let mut case = Case::new(name, path.to_path_buf(), Kind::Manifest, &[]);
    for line in text.lines() {
        let Some(comment) = line.strip_prefix('#') else { break };
        if comment.starts_with('!') {
            break; // a `sim run` directive, not a header line
        }
        let Some((key, value)) = comment.trim().split_once(':') else { continue };
        let value = value.trim();
        match key.trim() {
            "kind" => kind = Some(Kind::parse(value).ok_or_else(|| format!("{name}: unknown kind {value:?}"))?),
            "expect" => case.expect.push(value.to_string()),
            "run" => case.standalone = !value.starts_with("no"),
            "xfail" => case.xfail = Some(value.to_string()),
            "about" => {}
            other => return Err(format!("{name}: unknown header key {other:?}")),
        }
    }
    case.kind = kind.ok_or_else(|| format!("{name}: no `# kind:` header"))?;
    if case.kind != Kind::Manifest {
        case.standalone = false;
    }
    if case.expect.is_empty() {
        return Err(format!("{name}: no `# expect:` header"));
    }
    // Every manifest refusal names the file or the resource; every scenario refusal the file.
    let stem = name.trim_end_matches('/');
    let located = case.expect.iter().any(|e| e.contains(stem) || e.contains('/'));
    if case.kind == Kind::Manifest && !located {
        return Err(format!("{name}: no expected fragment names the file or a resource (Kind/name)"));
    }
    if case.kind == Kind::Scenario && !case.expect.iter().any(|e| e.contains(stem)) {
        return Err(format!("{name}: no expected fragment names the file"));
    }
    Ok(case)
}

/// The committed corpus, sorted by name.
fn committed_cases() -> Result<Vec<Case>, Vec<String>> {
    let mut entries: Vec<PathBuf> =
        std::fs::read_dir(corpus_dir()).expect("tests/bad_inputs exists").map(|e| e.expect("directory entry").path()).collect();
    entries.sort();
    let mut cases = Vec::new();
    let mut problems = Vec::new();
    for path in entries {
        let file_name = path.file_name().and_then(|n| n.to_str()).expect("UTF-8 file name").to_string();
        let (name, header_file) =
            if path.is_dir() { (format!("{file_name}/"), path.join("00-case.yaml")) } else { (file_name, path.clone()) };
        let text = match std::fs::read(&header_file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                problems.push(format!("{name}: cannot read {}: {e}", header_file.display()));
                continue;
            }
        };
        match read_header(&name, &path, &text) {
            Ok(c) => cases.push(c),
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() { Ok(cases) } else { Err(problems) }
}

// ---------------------------------------------------------------------------------------------
// Inputs generated at test time

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn fifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path without NUL");
    // SAFETY: a valid NUL-terminated path; mkfifo has no other preconditions.
    let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o644) };
    assert_eq!(rc, 0, "mkfifo {}: {}", path.display(), std::io::Error::last_os_error());
}

fn symlink(target: impl AsRef<Path>, link: &Path) {
    std::os::unix::fs::symlink(target.as_ref(), link).unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
}

/// A file of `len` bytes without writing them (the loaders must refuse it by its size).
fn sparse(path: &Path, len: u64) {
    let f = std::fs::File::create(path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
    f.set_len(len).expect("set_len");
}

fn good_desired() -> String {
    std::fs::read_to_string(root().join(GOOD_DESIRED)).expect("good desired state")
}

fn good_scenario() -> String {
    std::fs::read_to_string(root().join(GOOD_SCENARIO)).expect("good scenario")
}

const DEPLOYMENT: &str = "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: contoso}\nspec: {}\n";

/// YAML aliases that expand to 10^12 nodes (a "billion laughs").
fn laughs(indent: &str) -> String {
    let mut out = format!("{indent}l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for i in 1..12 {
        let refs = vec![format!("*l{}", i - 1); 10].join(", ");
        out.push_str(&format!("{indent}l{i}: &l{i} [{refs}]\n"));
    }
    out
}

fn generated_cases(dir: &Path) -> Vec<Case> {
    let mut cases = Vec::new();
    let p = |name: &str| dir.join(name);
    let mut add = |name: &str, path: PathBuf, kind: Kind, expect: &[&str]| {
        cases.push(Case::new(&format!("generated/{name}"), path, kind, expect));
    };

    // Size caps (issue 9, 5): checked on the size before anything is read.
    let big = p("huge.yaml");
    let mut text = String::from(DEPLOYMENT);
    while text.len() <= (4 << 20) {
        text.push_str("# padding padding padding padding padding padding padding padding padding padding\n");
    }
    write(&big, &text);
    add("manifest 4 MiB + 1 line", big, Kind::Manifest, &["huge.yaml", "the limit is 4194304 bytes"]);
    let big = p("huge-scenario.yaml");
    sparse(&big, (64 << 20) + 1);
    add("scenario 64 MiB + 1 (sparse)", big, Kind::Scenario, &["huge-scenario.yaml", "the limit is 67108864 bytes"]);
    let big = p("huge-script.ps1");
    sparse(&big, 50 << 20);
    add("script 50 MB (sparse)", big, Kind::Script, &["--script", "huge-script.ps1", "the limit is 1048576 bytes"]);

    // Deeply nested and exponentially aliased documents.
    let deep = p("deep.yaml");
    write(
        &deep,
        format!(
            "{DEPLOYMENT}---\napiVersion: lyncdr.io/v1alpha1\nkind: PoolPair\nmetadata: {{name: p}}\nspec: {}{}\n",
            "[".repeat(200_000),
            "]".repeat(200_000)
        ),
    );
    add("manifest nested 200,000 deep", deep, Kind::Manifest, &["deep.yaml", "recursion limit exceeded"]);
    let deep = p("deep-mapping.yaml");
    write(
        &deep,
        format!(
            "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: contoso}}\nspec:\n  policy: {}1{}\n",
            "{a: ".repeat(5000),
            "}".repeat(5000)
        ),
    );
    add("manifest mappings nested 5,000 deep", deep, Kind::Manifest, &["deep-mapping.yaml", "budget breached"]);
    let deep = p("deep-scenario.yaml");
    write(&deep, format!("{}timings: {}\n", good_scenario(), "[".repeat(200_000)));
    add("scenario nested 200,000 deep", deep, Kind::Scenario, &["deep-scenario.yaml", "recursion limit exceeded"]);
    let bomb = p("laughs.yaml");
    write(&bomb, format!("apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {{name: contoso}}\nspec:\n{}", laughs("  ")));
    add("manifest billion laughs", bomb, Kind::Manifest, &["laughs.yaml", "budget breached"]);
    let bomb = p("laughs-scenario.yaml");
    write(&bomb, format!("{}{}", laughs(""), good_scenario()));
    add("scenario billion laughs", bomb, Kind::Scenario, &["laughs-scenario.yaml", "budget breached"]);

    // Files that are not regular files (issue 9, 5): a FIFO would hang a reader, /dev/zero never ends.
    for (name, kind, extra) in
        [("fifo.yaml", Kind::Manifest, ""), ("fifo-scenario.yaml", Kind::Scenario, ""), ("fifo.ps1", Kind::Script, "--script")]
    {
        let f = p(name);
        fifo(&f);
        let expect: Vec<&str> = [name, "not a regular file", extra].into_iter().filter(|s| !s.is_empty()).collect();
        add(&format!("{} FIFO", kind.name()), f, kind, &expect);
    }
    for (name, kind, extra) in
        [("zero.yaml", Kind::Manifest, ""), ("zero-scenario.yaml", Kind::Scenario, ""), ("zero.ps1", Kind::Script, "--script")]
    {
        let f = p(name);
        symlink("/dev/zero", &f);
        let expect: Vec<&str> = [name, "not a regular file", extra].into_iter().filter(|s| !s.is_empty()).collect();
        add(&format!("{} symlink to /dev/zero", kind.name()), f, kind, &expect);
    }
    let d = p("dir-with-fifo");
    std::fs::create_dir(&d).expect("mkdir");
    write(&d.join("a.yaml"), good_desired());
    fifo(&d.join("b.yaml"));
    add("directory holding a FIFO", d, Kind::Manifest, &["dir-with-fifo/b.yaml", "not a regular file"]);
    let d = p("dir-with-zero");
    std::fs::create_dir(&d).expect("mkdir");
    write(&d.join("a.yaml"), good_desired());
    symlink("/dev/zero", &d.join("b.yaml"));
    add("directory holding a symlink to /dev/zero", d, Kind::Manifest, &["dir-with-zero/b.yaml", "not a regular file"]);

    // Directories: duplicates across files (issue 9, 7), too many files, too deep, loops, escapes.
    let d = p("dir-duplicates");
    std::fs::create_dir_all(d.join("prod")).expect("mkdir");
    write(&d.join("contoso.yaml"), good_desired());
    write(&d.join("prod/contoso-copy.yaml"), good_desired().replace("approval: Automatic", "approval: Manual"));
    add(
        "directory: the same deployment in two files",
        d,
        Kind::Manifest,
        &[
            "LyncDeployment/contoso (namespace lync) is defined twice",
            "dir-duplicates/contoso.yaml",
            "dir-duplicates/prod/contoso-copy.yaml",
        ],
    );
    let d = p("dir-many");
    std::fs::create_dir(&d).expect("mkdir");
    for i in 0..=10_000 {
        write(&d.join(format!("{i:05}.yaml")), "# nothing\n");
    }
    add("directory of 10,001 manifest files", d, Kind::Manifest, &["dir-many", "more than 10000 manifest files"]);
    let d = p("dir-deep");
    let mut leaf = d.clone();
    for i in 0..40 {
        leaf = leaf.join(format!("d{i}"));
    }
    std::fs::create_dir_all(&leaf).expect("mkdir -p");
    write(&leaf.join("contoso.yaml"), good_desired());
    add("directories nested 40 deep", d, Kind::Manifest, &["dir-deep/d0/d1", "nested more than 32 deep"]);
    let d = p("dir-loop");
    std::fs::create_dir(&d).expect("mkdir");
    write(&d.join("contoso.yaml"), good_desired());
    symlink("..", &d.join("again"));
    add("directory with a symlink loop", d, Kind::Manifest, &["dir-loop/again", "a symbolic link to a directory"]);
    let d = p("dir-escape");
    std::fs::create_dir(&d).expect("mkdir");
    write(&d.join("contoso.yaml"), good_desired());
    symlink("/etc", &d.join("etc"));
    add("directory with a symlink to /etc", d, Kind::Manifest, &["dir-escape/etc", "a symbolic link to a directory"]);
    let d = p("dir-escape-file");
    std::fs::create_dir(&d).expect("mkdir");
    write(&d.join("contoso.yaml"), good_desired());
    write(&p("secret.yaml"), "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: secret-password-hunter2}\nspec: 1\n");
    symlink(p("secret.yaml"), &d.join("secret.yaml"));
    add("directory with a symlinked file outside it", d, Kind::Manifest, &["dir-escape-file/secret.yaml", "outside"]);
    let d = p("dir-empty");
    std::fs::create_dir(&d).expect("mkdir");
    add("empty directory", d, Kind::Manifest, &["no lyncdr.io resources found in", "dir-empty"]);
    add("missing file", p("missing.yaml"), Kind::Manifest, &["cannot read", "missing.yaml"]);
    add("missing scenario", p("missing-scenario.yaml"), Kind::Scenario, &["cannot read scenario", "missing-scenario.yaml"]);

    // Bytes that cannot be committed as text.
    let f = p("latin1.yaml");
    write(&f, b"apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: z\xfcrich}\nspec: {}\n");
    add("manifest in Latin-1", f, Kind::Manifest, &["latin1.yaml", "not UTF-8"]);
    let f = p("latin1-scenario.yaml");
    write(&f, [good_scenario().as_bytes(), b"# Z\xfcrich\n"].concat());
    add("scenario in Latin-1", f, Kind::Scenario, &["latin1-scenario.yaml", "not UTF-8"]);
    let f = p("latin1.ps1");
    write(&f, b"Set-CsSite -Identity Z\xfcrich\n");
    add("script in Latin-1", f, Kind::Script, &["--script", "latin1.ps1", "not UTF-8"]);
    let f = p("nul.yaml");
    write(&f, "apiVersion: lyncdr.io/v1alpha1\nkind: LyncDeployment\nmetadata: {name: contoso}\nspec: {}\0\n");
    add("manifest with a NUL byte", f, Kind::Manifest, &["nul.yaml", "not valid YAML"]);
    let f = p("cr.ps1");
    write(&f, "Get-CsPool -Identity pool01.dal.contoso.com\rRemove-CsPool -Identity pool01.dal.contoso.com\n");
    add("script: a lone carriage return starts a second command", f, Kind::Script, &["one command per line"]);
    let f = p("nul.ps1");
    write(&f, "Set-CsSite -Identity Dallas\0 -FederationRoute EdgeServer:edge01.sea.contoso.com\n");
    add("script: a NUL in a bare word", f, Kind::Script, &["control character"]);
    let f = p("vt.ps1");
    write(&f, "Set-CsSite -Identity 'Dallas\x0b'\n");
    add("script: a vertical tab in a quoted argument", f, Kind::Script, &["control character"]);
    let f = p("big-script.ps1");
    write(&f, "Get-CsPool\n".repeat(200_000));
    add("script of 2.2 MB, from the file and on standard input", f, Kind::Script, &["--script", "1048576 bytes"]);
    let f = p("huge-line.ps1");
    write(&f, format!("Set-CsSite -Identity '{}\n", "x".repeat(1_000_000)));
    add("script: a 1 MB line without its closing quote", f, Kind::Script, &["missing the terminator"]);
    cases
}

// ---------------------------------------------------------------------------------------------
// Running the binary

/// One finished (or killed) run of the binary.
struct Run {
    what: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
    timed_out: bool,
}

impl Run {
    fn describe(&self) -> String {
        let cut = |s: &str| -> String {
            if s.len() > 2000 { format!("{}… ({} bytes)", &s[..s.floor_char_boundary(2000)], s.len()) } else { s.to_string() }
        };
        format!(
            "`{}` exited with {:?} after {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.what,
            self.code,
            self.elapsed,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

fn capture(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = MAX_CAPTURE.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            }
        }
        kept
    })
}

/// Runs `lyncdr` from the crate root with a time limit; the process is killed when it is over.
fn lyncdr(args: &[&str], stdin: Option<&[u8]>, limit: Duration) -> Run {
    let what = format!("lyncdr {}", args.join(" "));
    let started = Instant::now();
    let mut child: Child = Command::new(BIN)
        .args(args)
        .current_dir(root())
        .env("RUST_BACKTRACE", "1")
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        let input = input.to_vec();
        // A reader that stops early closes the pipe: ignore the error, the exit code tells.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let out = capture(child.stdout.take().expect("stdout"));
    let err = capture(child.stderr.take().expect("stderr"));
    let mut timed_out = false;
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break Some(status),
            None if started.elapsed() > limit => {
                timed_out = true;
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let elapsed = started.elapsed();
    Run {
        what,
        code: status.and_then(|s| s.code()),
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        elapsed,
        timed_out,
    }
}

// ---------------------------------------------------------------------------------------------
// Checks

/// What the campaign found for one case.
struct Verdict {
    case: Case,
    runs: Vec<(String, Option<i32>, Duration)>,
    failures: Vec<String>,
}

/// The checks every refusal must pass; `message` is where the expected fragments must be.
fn check_refusal(run: &Run, case: &Case, message: &str, failures: &mut Vec<String>) {
    let mut fail = |why: String| failures.push(format!("{why}\n{}", run.describe()));
    if run.timed_out {
        fail(format!("hang: killed after {:?}", run.elapsed));
        return;
    }
    match run.code {
        None => fail("killed by a signal".into()),
        Some(0) => fail("exit code 0: the input was accepted".into()),
        Some(101) => fail("exit code 101: a panic".into()),
        Some(_) => {}
    }
    for stream in [&run.stdout, &run.stderr] {
        for bad in ["panicked", "stack backtrace", "RUST_BACKTRACE"] {
            if stream.contains(bad) {
                fail(format!("the output contains {bad:?}"));
            }
        }
    }
    if let Some(c) = run.stderr.chars().find(|c| c.is_control() && !matches!(c, '\n' | '\t')) {
        fail(format!("standard error contains the raw control character {c:?}"));
    }
    for e in &case.expect {
        if !message.contains(e.as_str()) {
            fail(format!("the message does not contain {e:?}"));
        }
    }
}

fn expect_quiet_stdout(run: &Run, failures: &mut Vec<String>) {
    if !run.timed_out && !run.stdout.trim().is_empty() {
        failures.push(format!("something was printed on standard output\n{}", run.describe()));
    }
}

fn path_arg(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn run_case(case: &Case, sim: &SimServe, scratch: &Path, good_script: &Path) -> Verdict {
    let limit = if case.xfail.is_some() { XFAIL_TIMEOUT } else { TIMEOUT };
    let mut v = Verdict { case: case.clone(), runs: Vec::new(), failures: Vec::new() };
    let path = path_arg(&case.path);
    match case.kind {
        Kind::Manifest => {
            let run = lyncdr(&["plan", "--scenario", GOOD_SCENARIO, "--desired", path], None, limit);
            record(&run, &mut v);
            check_refusal(&run, case, &run.stderr, &mut v.failures);
            expect_quiet_stdout(&run, &mut v.failures);
            if case.xfail.is_some() && !v.failures.is_empty() {
                return v;
            }
            let run = lyncdr(&["demo", "--desired", path, "--format", "json"], None, limit);
            record(&run, &mut v);
            check_refusal(&run, case, &run.stderr, &mut v.failures);
            expect_quiet_stdout(&run, &mut v.failures);
            if case.standalone {
                let state = tempfile::tempdir_in(scratch).expect("state dir");
                let before = sim.log().len();
                let run = lyncdr(
                    &["run", "--manifests", path, "--once", "--state-dir", path_arg(state.path()), "--simulator", &sim.url],
                    None,
                    limit,
                );
                record(&run, &mut v);
                check_refusal(&run, case, &run.stderr, &mut v.failures);
                expect_quiet_stdout(&run, &mut v.failures);
                let calls = sim.log();
                if calls.len() != before {
                    v.failures.push(format!(
                        "the simulator received {} calls during `run --manifests` (two cases run at a time: check the other one too): {:?}",
                        calls.len() - before,
                        &calls[before..]
                    ));
                }
            }
        }
        Kind::Scenario => {
            let commands: [Vec<&str>; 4] = [
                vec!["plan", "--scenario", path, "--desired", GOOD_DESIRED],
                vec!["demo", "--scenario", path, "--format", "json"],
                vec!["sim", "run", "--scenario", path, "--script", path_arg(good_script), "--format", "json"],
                vec!["sim", "serve", "--scenario", path, "--listen", "127.0.0.1:0"],
            ];
            for args in &commands {
                let run = lyncdr(args, None, limit);
                record(&run, &mut v);
                check_refusal(&run, case, &run.stderr, &mut v.failures);
                expect_quiet_stdout(&run, &mut v.failures);
                if case.xfail.is_some() && !v.failures.is_empty() {
                    return v;
                }
            }
        }
        Kind::Script => {
            let bytes = std::fs::metadata(&case.path)
                .ok()
                .filter(|m| m.is_file() && m.len() <= 3 << 20)
                .and_then(|_| std::fs::read(&case.path).ok());
            let mut runs = vec![lyncdr(&["sim", "run", "--scenario", GOOD_SCENARIO, "--script", path, "--format", "json"], None, limit)];
            if let Some(b) = &bytes {
                runs.push(lyncdr(&["sim", "run", "--scenario", GOOD_SCENARIO, "--script", "-", "--format", "json"], Some(b), limit));
            }
            // On standard input the script has no file name to show: the other fragments must be there.
            let file_name = case.path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            let mut from_stdin = case.clone();
            from_stdin.expect.retain(|e| !e.contains(file_name));
            for (run, case) in runs.iter().zip([case, &from_stdin]) {
                record(run, &mut v);
                let message = format!("{}\n{}", run.stdout, run.stderr);
                check_refusal(run, case, &message, &mut v.failures);
                check_script_results(run, &mut v.failures);
            }
        }
        Kind::Fault => {
            let text = std::fs::read_to_string(&case.path).expect("fault case");
            let fault = text.lines().find(|l| !l.starts_with('#')).expect("a fault line");
            let run = lyncdr(&["demo", "--fault", fault, "--format", "json"], None, limit);
            record(&run, &mut v);
            check_refusal(&run, case, &run.stderr, &mut v.failures);
            expect_quiet_stdout(&run, &mut v.failures);
        }
    }
    v
}

fn record(run: &Run, v: &mut Verdict) {
    v.runs.push((run.what.clone(), run.code, run.elapsed));
}

/// A refused script runs nothing: exit 2 with nothing on standard output (the script as a whole
/// refused), or exit 1 with every line reported refused and the simulated clock still at zero.
fn check_script_results(run: &Run, failures: &mut Vec<String>) {
    if run.timed_out || run.code != Some(1) {
        if run.code == Some(2) && !run.stdout.trim().is_empty() {
            failures.push(format!("a refused script printed results\n{}", run.describe()));
        }
        return;
    }
    let results: Vec<serde_json::Value> = match serde_json::from_str(&run.stdout) {
        Ok(r) => r,
        Err(e) => {
            failures.push(format!("`sim run --format json` did not print a JSON list ({e})\n{}", run.describe()));
            return;
        }
    };
    if results.is_empty() {
        failures.push(format!("exit code 1 without any line result\n{}", run.describe()));
    }
    for r in &results {
        if r["ok"] != serde_json::Value::Bool(false) || r["at"] != serde_json::json!(0) {
            failures.push(format!("a line of a bad script ran: {r}\n{}", run.describe()));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The campaign

fn summary(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    let width = verdicts.iter().map(|v| v.case.name.chars().count()).max().unwrap_or(4).max(4);
    out.push_str(&format!("{:<width$}  {:<8}  {:>5}  {:>8}  {:<22}  verdict\n", "case", "kind", "runs", "max ms", "exit codes"));
    for v in verdicts {
        let codes: Vec<String> = v.runs.iter().map(|(_, c, _)| c.map(|c| c.to_string()).unwrap_or_else(|| "killed".into())).collect();
        let slowest = v.runs.iter().map(|(_, _, d)| d.as_millis()).max().unwrap_or(0);
        let verdict = match (&v.case.xfail, v.failures.is_empty()) {
            (None, true) => "refused".to_string(),
            (None, false) => format!("FAILED ({} problems)", v.failures.len()),
            (Some(_), false) => "xfail (known, still fails)".to_string(),
            (Some(_), true) => "XPASS: remove the xfail header".to_string(),
        };
        out.push_str(&format!(
            "{:<width$}  {:<8}  {:>5}  {:>8}  {:<22}  {verdict}\n",
            v.case.name,
            v.case.kind.name(),
            v.runs.len(),
            slowest,
            codes.join(",")
        ));
    }
    let mut per_kind: BTreeMap<Kind, (usize, usize)> = BTreeMap::new();
    for v in verdicts {
        let e = per_kind.entry(v.case.kind).or_default();
        e.0 += 1;
        e.1 += v.runs.len();
    }
    for (k, (cases, runs)) in per_kind {
        out.push_str(&format!("{}: {cases} cases, {runs} runs\n", k.name()));
    }
    out
}

#[test]
fn the_corpus_is_large_enough_and_every_header_is_well_formed() {
    let cases = committed_cases().unwrap_or_else(|problems| panic!("corpus headers:\n{}", problems.join("\n")));
    assert!(cases.len() >= MIN_CORPUS, "{} committed cases; the campaign needs at least {MIN_CORPUS}", cases.len());
    for kind in [Kind::Manifest, Kind::Scenario, Kind::Script, Kind::Fault] {
        assert!(cases.iter().any(|c| c.kind == kind), "no {} case in the corpus", kind.name());
    }
}

#[test]
fn every_bad_input_is_refused_naming_the_field_without_a_panic_a_hang_or_a_call() {
    let cases = committed_cases().unwrap_or_else(|problems| panic!("corpus headers:\n{}", problems.join("\n")));
    let scratch = tempfile::tempdir().expect("scratch directory");
    let good_script = scratch.path().join("good.ps1");
    write(&good_script, GOOD_SCRIPT);
    let generated = scratch.path().join("generated");
    std::fs::create_dir(&generated).expect("mkdir");
    let all: Vec<Case> = cases.into_iter().chain(generated_cases(&generated)).collect();

    // A `lyncdr sim serve` on the good scenario, for `run --manifests`; killed when dropped.
    let sim = SimServe::start(Path::new(GOOD_SCENARIO), "60");
    let next = AtomicUsize::new(0);
    let verdicts: Mutex<Vec<(usize, Verdict)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(case) = all.get(i) else { break };
                    let v = run_case(case, &sim, scratch.path(), &good_script);
                    verdicts.lock().expect("verdicts").push((i, v));
                }
            });
        }
    });
    let mut verdicts = verdicts.into_inner().expect("verdicts");
    verdicts.sort_by_key(|(i, _)| *i);
    let verdicts: Vec<Verdict> = verdicts.into_iter().map(|(_, v)| v).collect();

    let table = summary(&verdicts);
    println!("{table}");
    let _ = std::fs::write(Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad_inputs-summary.txt"), &table);

    assert_eq!(sim.http("GET", "/healthz", None).0, 200, "the simulator is still healthy");
    let mut problems = Vec::new();
    let calls = sim.log();
    if !calls.is_empty() {
        problems.push(format!("bad manifests reached the simulator: {calls:?}"));
    }
    for v in &verdicts {
        match &v.case.xfail {
            None => {
                for f in &v.failures {
                    problems.push(format!("[{}] {f}", v.case.name));
                }
            }
            Some(why) if v.failures.is_empty() => {
                problems.push(format!("[{}] is marked xfail ({why}) but is now refused as expected: remove the header", v.case.name))
            }
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "{} problems:\n\n{}\n\n{table}", problems.len(), problems.join("\n\n"));
}
