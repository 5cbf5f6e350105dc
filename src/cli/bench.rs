//! `lyncdr bench`: runs [`crate::bench`] and prints its tables or its JSON report.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{CliError, Format};
use crate::bench::{Options, render, run as measure};
use crate::model::text::shown;

pub fn run(format: Format, quick: bool, charts: Option<PathBuf>, kubeconfig: Option<PathBuf>) -> Result<ExitCode, CliError> {
    if let Some(dir) = &charts
        && !dir.is_dir()
    {
        return Err(CliError(format!("--charts {}: there is no such directory; create it first", shown(&dir.display().to_string()))));
    }
    let report = measure(&Options { quick, charts, kubeconfig }).map_err(|e| CliError(e.to_string()))?;
    match format {
        Format::Json | Format::Dot => println!("{}", serde_json::to_string_pretty(&report)?),
        Format::Text => print!("{}", render(&report)),
    }
    Ok(ExitCode::SUCCESS)
}
