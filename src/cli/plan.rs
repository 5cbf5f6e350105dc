//! `lyncdr plan`: observe the simulated deployment of a scenario and print the plan.

use std::path::Path;
use std::process::ExitCode;

use super::{CliError, Format, output, virtual_runtime};
use crate::api::manifests;
use crate::desired::{self, Desired};
use crate::engine::Engine;
use crate::engine::journal::MemoryJournal;
use crate::scenario::Scenario;
use crate::sim::LocalSim;
use crate::sim::Simulator;

/// Loads the single deployment's desired state from manifests.
pub(crate) fn load_desired(path: &Path) -> Result<Desired, CliError> {
    let m = manifests::load(path)?;
    let mut all = desired::compile(&m)?;
    match all.len() {
        0 => Err(CliError(format!("{}: no LyncDeployment found; the desired state needs one", path.display()))),
        1 => Ok(all.remove(0)),
        n => Err(CliError(format!("{}: {n} LyncDeployments found; give one deployment's manifests", path.display()))),
    }
}

pub fn run(scenario: &Path, desired: &Path, format: Format) -> Result<ExitCode, CliError> {
    let s = Scenario::load(scenario)?;
    let d = load_desired(desired)?;
    d.check_against(&s.topology)?;
    let rt = virtual_runtime()?;
    let (observed, plan) = rt.block_on(async {
        let lync = LocalSim::new(Simulator::new(&s));
        let journal = MemoryJournal::default();
        let engine = Engine::new(&lync, &journal);
        engine.preview(&d, &|_| {}).await
    })?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&plan)?),
        Format::Dot => print!("{}", plan.to_dot()),
        Format::Text => {
            print!("{}", output::observed_table(&observed));
            print!("{}", output::plan_text(&plan));
        }
    }
    Ok(ExitCode::SUCCESS)
}
