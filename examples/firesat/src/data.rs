//! The scenario files shipped with the example: TLEs, fires, ground
//! stations (`data/`).

use crate::geo::Orbit;
use crate::messages::{FireStarted, GroundLocation};

/// The TLEs (title line + two lines each; public CelesTrak elements of
/// 2023-08-04, as in nost_tools' FireSat data).
pub const TLES: &str = include_str!("../data/tles.txt");
/// The fires (`fireId,start_time,latitude,longitude`).
pub const FIRES: &str = include_str!("../data/fires.csv");
/// The ground stations (`groundId,latitude,longitude,elevAngle,operational`).
pub const GROUNDS: &str = include_str!("../data/grounds.csv");

/// Parse three-line TLEs.
pub fn orbits(text: &str) -> anyhow::Result<Vec<Orbit>> {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    anyhow::ensure!(
        lines.len().is_multiple_of(3),
        "TLE file: expected 3 lines per satellite"
    );
    lines
        .chunks(3)
        .map(|c| Orbit::from_tle(c[0], c[1], c[2]))
        .collect()
}

fn rows(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split(',').map(str::trim).collect()))
}

/// Parse the fires CSV.
pub fn fires(text: &str) -> anyhow::Result<Vec<FireStarted>> {
    rows(text)
        .map(|(n, f)| {
            anyhow::ensure!(f.len() == 4, "fires line {n}: expected 4 fields");
            Ok(FireStarted {
                fireId: f[0].parse()?,
                start: f[1].parse()?,
                latitude: f[2].parse()?,
                longitude: f[3].parse()?,
            })
        })
        .collect()
}

/// Parse the ground stations CSV.
pub fn grounds(text: &str) -> anyhow::Result<Vec<GroundLocation>> {
    rows(text)
        .map(|(n, f)| {
            anyhow::ensure!(f.len() == 5, "grounds line {n}: expected 5 fields");
            Ok(GroundLocation {
                groundId: f[0].parse()?,
                latitude: f[1].parse()?,
                longitude: f[2].parse()?,
                elevAngle: f[3].parse()?,
                operational: f[4].parse()?,
            })
        })
        .collect()
}
