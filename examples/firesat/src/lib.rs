//! FireSat, nost_tools' flagship NOS-T scenario, written with nost-rs.
//!
//! Four applications on one prefix: a `manager` (from `firesat.yaml`),
//! `fire` (starts the fires of `data/fires.csv` as scenario time passes
//! them, `PREFIX.fire.location`, and records what happened to each),
//! `ground` (announces the stations of `data/grounds.csv`,
//! `PREFIX.ground.location`) and `constellation` (a [`Constellation`]
//! entity propagating the TLEs of `data/tles.txt` with SGP4; observers
//! publish `PREFIX.constellation.detected` / `.reported` on a fire's first
//! detection / report, and a wallclock-interval publisher
//! `PREFIX.constellation.location`).
//!
//! Read [`run`] for the API tour: entities added before `start_up` and
//! reached by name and type from message callbacks, entity observers, a
//! `WallclockTimeIntervalPublisher`, simulator observers, the manager's
//! test plan.

pub mod constellation;
pub mod data;
pub mod geo;
pub mod messages;
mod run;

pub use constellation::Constellation;
pub use run::{FireRecord, Scenario, Summary, run};
