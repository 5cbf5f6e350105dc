//! The `lyncdr` command line: `plan`, `sim run`, `sim serve`, `demo`, `bench`, `crdgen`. Every command
//! drives the same engine; output is human-readable by default and `--format json` for tools.

mod admin;
mod bench;
pub mod demo;
mod output;
mod plan;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(name = "lyncdr", version, about = "Declarative disaster recovery for Lync Server 2013 and Skype for Business Server")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    Dot,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Observe a simulated deployment and print the plan that reaches the desired state.
    Plan {
        /// Scenario file: the simulated deployment to observe.
        #[arg(long)]
        scenario: PathBuf,
        /// Desired state: a manifest file or a directory of manifests.
        #[arg(long)]
        desired: PathBuf,
        /// text, json, or dot (Graphviz).
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
    /// The simulator on its own.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Run the engine against the in-process simulator until converged or blocked (a built-in
    /// two-site disaster and recovery without arguments).
    Demo {
        #[arg(long)]
        scenario: Option<PathBuf>,
        #[arg(long)]
        desired: Option<PathBuf>,
        /// A fault at a simulated time: TIME:ACTION:TARGET, e.g. 0s:down:site/Dallas. Repeatable.
        #[arg(long = "fault")]
        faults: Vec<String>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Steps run at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// How the engine reaches the simulator: in process (virtual time), or through the
        /// PowerShell driver over WinRM to the simulator's WS-Man endpoint (scaled real time,
        /// the path a real deployment takes).
        #[arg(long, value_enum, default_value_t)]
        transport: DemoTransport,
        /// Also write the run as a timeline chart (SVG): one lane per pool, Edge pool and the
        /// CMS, each step a bar over simulated time, the critical path and the RTO marked.
        #[arg(long, value_name = "FILE.svg")]
        timeline: Option<PathBuf>,
    },
    /// Print the run-as runner: the PowerShell script a scheduled task on each Front End runs
    /// lyncdr's scripts with, as its own account (the double hop; docs/real-deployment.md).
    RunasRunner {
        /// The scheduled task's name.
        #[arg(long, default_value = "lyncdr-runas")]
        task: String,
        /// The spool directory the task reads scripts from.
        #[arg(long, default_value = r"C:\ProgramData\lyncdr\spool")]
        spool: String,
    },
    /// Measure recovery against its limits (RTO against the critical path and the manual
    /// runbook, user placement, planner scale, the standalone process's footprint and idle cost)
    /// and print every ratio (docs/benchmarks.md).
    Bench {
        /// text (tables) or json.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Smallest sizes only: a smoke run of the harness.
        #[arg(long)]
        quick: bool,
        /// Write the timeline charts (SVG) of the site-loss recovery and failback into this
        /// directory.
        #[arg(long)]
        charts: Option<PathBuf>,
        /// Also run the operator on this cluster (a test or scratch cluster: the bench installs
        /// the CRDs and makes, then deletes, a namespace): reaction latency and API traffic.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
    /// Print the CustomResourceDefinitions (YAML), or write one file per CRD into a directory.
    Crdgen {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the operator (in a cluster or with a kubeconfig), or with --manifests the standalone
    /// front end on a directory of the same YAML.
    Run(RunArgs),
    /// Approve the plan a LyncDeployment waits on (annotation lyncdr.io/approve=<hash>).
    Approve {
        /// The LyncDeployment.
        name: String,
        #[arg(long, short = 'n', default_value = "default")]
        namespace: String,
        /// The plan hash to approve; default: the plan currently in status.
        #[arg(long)]
        hash: Option<String>,
    },
    /// Tell lyncdr that a journal entry whose outcome was unknown has been dealt with (check the
    /// deployment first): in the cluster through the annotation lyncdr.io/resolve, or with
    /// --state directly in a standalone state directory.
    Resolve {
        /// The LyncDeployment.
        name: String,
        /// The step id of the pending entry (as status and `lyncdr status` show it).
        step: String,
        /// Namespace (cluster default: default; standalone: as in the manifests).
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        /// Standalone: the state directory of `lyncdr run --manifests`.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// A readable summary of every deployment, pair and plan (from the cluster, or with --state
    /// from a standalone state directory).
    Status {
        #[arg(long, short = 'n')]
        namespace: Option<String>,
        #[arg(long)]
        state: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
    },
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Standalone: a directory (or file) of lyncdr manifests instead of a cluster.
    #[arg(long)]
    pub manifests: Option<PathBuf>,
    /// Standalone: where the journal, memory and status file live.
    #[arg(long, default_value = ".lyncdr")]
    pub state_dir: PathBuf,
    /// Standalone: the status file (default <state-dir>/status.json).
    #[arg(long)]
    pub status_file: Option<PathBuf>,
    /// Standalone: one round, then exit.
    #[arg(long)]
    pub once: bool,
    /// Standalone: the simulator URL, overriding the manifests' connection.
    #[arg(long)]
    pub simulator: Option<String>,
    /// Standalone: where WinRM credentials are read from: DIR/<credentialsSecret>/username and
    /// .../password (also DIR/<namespace>/<credentialsSecret>/), the layout of a Secret mounted
    /// as a volume.
    #[arg(long)]
    pub secrets_dir: Option<PathBuf>,
    /// Operator: address of /metrics, /healthz and /readyz.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub metrics_addr: String,
    /// Operator: take a Lease so only one replica acts.
    #[arg(long)]
    pub leader_election: bool,
    #[arg(long, default_value = "lyncdr")]
    pub lease_name: String,
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Operator instance name (journal entries, events, lease holder).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Operator: watch one namespace only.
    #[arg(long)]
    pub watch_namespace: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// Run cmdlet lines (PowerShell, one per line) against a scenario and print each outcome.
    Run {
        #[arg(long)]
        scenario: PathBuf,
        /// File of cmdlet lines; `-` reads standard input.
        #[arg(long)]
        script: PathBuf,
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Record safe-order rule violations Lync itself lets through instead of refusing them.
        #[arg(long)]
        lenient: bool,
    },
    /// Serve the simulator over HTTP (JSON API) in scaled real time, and with --winrm over WS-Man.
    Serve {
        #[arg(long)]
        scenario: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
        #[arg(long)]
        lenient: bool,
        /// Also serve the simulator as WS-Man (WinRM) on this address, for the PowerShell
        /// driver: NTLM with message encryption, the password in LYNCDR_WINRM_PASSWORD.
        #[arg(long, value_name = "ADDR")]
        winrm: Option<String>,
        /// The account the WinRM endpoint accepts (`user`, `DOMAIN\user` or `user@REALM`).
        #[arg(long, value_name = "USER", default_value = "lyncdr", requires = "winrm")]
        winrm_user: String,
    },
}

/// A failure of a command: the message for the user.
pub struct CliError(pub String);

impl<E: std::fmt::Display> From<E> for CliError {
    fn from(e: E) -> Self {
        CliError(e.to_string())
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Run(_) | Command::Sim { command: SimCommand::Serve { .. } }) {
        restore_sigpipe();
    }
    let result = match cli.command {
        Command::Plan { scenario, desired, format } => plan::run(&scenario, &desired, format),
        Command::Sim { command: SimCommand::Run { scenario, script, format, lenient } } => sim::run(&scenario, &script, format, lenient),
        Command::Sim { command: SimCommand::Serve { scenario, listen, speed, lenient, winrm, winrm_user } } => {
            let winrm = winrm.map(|addr| sim::WinrmListen { addr, user: winrm_user });
            sim::serve(&scenario, &listen, speed, lenient, winrm)
        }
        Command::Demo { scenario, desired, faults, format, concurrency, transport, timeline } => {
            demo::run(scenario.as_deref(), desired.as_deref(), &faults, format, concurrency, transport, timeline.as_deref())
        }
        Command::RunasRunner { task, spool } => {
            let task = crate::driver::script::RunAsTask { task_name: task, spool, ..Default::default() };
            print!("{}", crate::driver::script::runner(&task));
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { format, quick, charts, kubeconfig } => bench::run(format, quick, charts, kubeconfig),
        Command::Crdgen { out } => crdgen(out),
        Command::Run(args) => admin::run(args),
        Command::Approve { name, namespace, hash } => admin::approve(&name, &namespace, hash.as_deref()),
        Command::Resolve { name, step, namespace, state } => admin::resolve(&name, &step, namespace.as_deref(), state.as_deref()),
        Command::Status { namespace, state, format } => admin::status(namespace.as_deref(), state.as_deref(), format),
    };
    match result {
        Ok(code) => code,
        Err(CliError(msg)) => {
            // Values are escaped where they are quoted; this is the last line of defence.
            eprintln!("error: {}", crate::model::text::shown_lines(&msg));
            ExitCode::from(2)
        }
    }
}

/// Commands that print to a terminal end quietly when the reader goes away (`lyncdr plan |
/// head`), as Unix tools do, instead of panicking on a broken pipe. Servers keep Rust's default
/// (the signal ignored, errors returned) so a closed socket never kills them.
fn restore_sigpipe() {
    // SAFETY: setting a signal disposition to its default before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// All CRDs as YAML documents.
pub fn crds_yaml() -> Result<String, CliError> {
    let mut out = String::new();
    for crd in crate::api::crds() {
        out.push_str("---\n");
        out.push_str(&serde_saphyr::to_string(&crd)?);
    }
    Ok(out)
}

fn crdgen(out: Option<PathBuf>) -> Result<ExitCode, CliError> {
    match out {
        None => print!("{}", crds_yaml()?),
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            for crd in crate::api::crds() {
                let name = crd.metadata.name.clone().unwrap_or_default();
                let text = format!("# Generated by `lyncdr crdgen`; do not edit.\n{}", serde_saphyr::to_string(&crd)?);
                std::fs::write(dir.join(format!("{name}.yaml")), text)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A paused, single-threaded runtime: simulated time runs as fast as the work allows.
/// How `lyncdr demo` reaches the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum DemoTransport {
    #[default]
    InProcess,
    Winrm,
}

pub(crate) fn virtual_runtime() -> Result<tokio::runtime::Runtime, CliError> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build()?)
}
