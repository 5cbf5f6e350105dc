//! lyncdr: declarative disaster recovery for Lync Server 2013 and Skype for Business Server
//! 2015/2019.
//!
//! The pipeline, one module per stage:
//! - [`model`]: the domain model (topology, observed state, operator memory);
//! - [`scenario`]: scenario files, the simulator's starting deployment;
//! - [`api`]: the Kubernetes custom resources users write, and loading them from manifests;
//! - [`desired`]: the desired state compiled and cross-checked from those resources;
//! - [`ps`]: cmdlet invocations, PowerShell text and parameter binding;
//! - [`sim`]: the faithful simulator of a Lync deployment;
//! - [`backend`]: the trait the engine drives a Lync deployment through, the HTTP client of
//!   `lyncdr sim serve` and its wire types (the in-process simulator is `sim::LocalSim`);
//! - [`winrm`]: the WS-Management (WinRM/WinRS) client and server, NTLM message encryption;
//! - [`driver`]: the PowerShell driver: the scripts lyncdr runs on Lync servers, and the
//!   backend that runs them over WinRM;
//! - [`connection`]: from a LyncDeployment's `spec.connection` to a backend (the simulator over
//!   HTTP or the driver over WinRM) with credentials from a Kubernetes Secret or a directory of
//!   secret files, shared by the operator and the standalone front end;
//! - [`planner`]: the pure planner, `plan(desired, observed, policy) -> Plan`;
//! - [`engine`]: observe, plan and execute with a journal, shared by every front end;
//! - [`status`]: status, conditions, the policy gate and plan progress, shared by the front ends;
//! - [`controller`]: the Kubernetes operator (reflector stores, the reconcile pipeline);
//! - [`standalone`]: `lyncdr run --manifests`, the operator without Kubernetes;
//! - [`timeline`]: the recovery timeline chart: a run's steps as an SVG, one lane per Front End
//!   pool, Edge pool, the CMS, user placements and the deployment, each step a bar over
//!   simulated time, the critical path after each fault and the moment every user is served
//!   again marked (`lyncdr demo --timeline`, the bench);
//! - [`bench`]: `lyncdr bench`, recovery measured against its limits (critical path, manual
//!   runbook), user placement, planner scale, footprint and idle cost;
//! - [`cli`]: the `lyncdr` command line.

pub mod api;
pub mod backend;
pub mod bench;
pub mod cli;
pub mod connection;
pub mod controller;
pub mod desired;
pub mod driver;
pub mod engine;
pub mod model;
pub mod planner;
pub mod ps;
pub mod scenario;
pub mod sim;
pub mod standalone;
pub mod status;
pub mod timeline;
pub mod winrm;
