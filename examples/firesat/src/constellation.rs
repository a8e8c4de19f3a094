//! The `Constellation` entity: satellites propagated each step, fires
//! learned from `fire.location`, stations from `ground.location`; it
//! notifies `detected` and `reported` on the step of a fire's first
//! detection and first report (nost_tools' FireSat `Constellation`).

use chrono::{DateTime, TimeDelta, Utc};
use nost_app::simulator::{Entity, EntityBase};

use crate::geo::{self, Orbit};
use crate::messages::{FireDetected, FireReported, FireStarted, GroundLocation};

/// The property notified on a fire's first detection (a [`FireDetected`]).
pub const PROPERTY_FIRE_DETECTED: &str = "detected";
/// The property notified on a fire's first report (a [`FireReported`]).
pub const PROPERTY_FIRE_REPORTED: &str = "reported";

struct Tracked {
    fire: FireStarted,
    detected: Vec<Option<DateTime<Utc>>>,
    reported: Vec<Option<DateTime<Utc>>>,
    first_detection: Option<FireDetected>,
    first_report: Option<FireReported>,
    announced_detection: bool,
    announced_report: bool,
}

/// The satellites and what they know.
pub struct Constellation {
    base: EntityBase,
    orbits: Vec<Orbit>,
    field_of_regard: f64,
    fires: Vec<Tracked>,
    grounds: Vec<GroundLocation>,
    positions: Vec<[f64; 3]>,
    next_positions: Vec<[f64; 3]>,
}

impl Constellation {
    /// A constellation named `name` whose sensors have `field_of_regard`
    /// (deg).
    pub fn new(name: &str, orbits: Vec<Orbit>, field_of_regard: f64) -> Self {
        Constellation {
            base: EntityBase::new(name),
            orbits,
            field_of_regard,
            fires: Vec::new(),
            grounds: Vec::new(),
            positions: Vec::new(),
            next_positions: Vec::new(),
        }
    }

    /// A fire started (the `on_fire` callback).
    pub fn on_fire(&mut self, fire: FireStarted) {
        if self.fires.iter().any(|t| t.fire.fireId == fire.fireId) {
            return;
        }
        let n = self.orbits.len();
        self.fires.push(Tracked {
            fire,
            detected: vec![None; n],
            reported: vec![None; n],
            first_detection: None,
            first_report: None,
            announced_detection: false,
            announced_report: false,
        });
    }

    /// A ground station appeared or changed (the `on_ground` callback).
    pub fn on_ground(&mut self, ground: GroundLocation) {
        match self
            .grounds
            .iter_mut()
            .find(|g| g.groundId == ground.groundId)
        {
            Some(g) => *g = ground,
            None => self.grounds.push(ground),
        }
    }

    /// The satellites' names.
    pub fn names(&self) -> Vec<String> {
        self.orbits.iter().map(|o| o.name.clone()).collect()
    }

    /// Committed Earth-fixed positions (m), one per satellite.
    pub fn positions(&self) -> &[[f64; 3]] {
        &self.positions
    }

    /// The field of regard (deg).
    pub fn field_of_regard(&self) -> f64 {
        self.field_of_regard
    }

    /// The first operational station that sees `sat`.
    pub fn in_range(&self, sat: [f64; 3]) -> Option<u32> {
        self.grounds
            .iter()
            .filter(|g| g.operational)
            .find(|g| geo::elevation(sat, geo::surface(g.latitude, g.longitude)) >= g.elevAngle)
            .map(|g| g.groundId)
    }

    fn propagate(&self, t: DateTime<Utc>) -> Vec<[f64; 3]> {
        self.orbits
            .iter()
            .map(|o| {
                o.position(t).unwrap_or_else(|e| {
                    tracing::warn!(satellite = %o.name, error = %e, "propagation failed");
                    [0.0; 3]
                })
            })
            .collect()
    }
}

impl Entity for Constellation {
    fn base(&self) -> &EntityBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut EntityBase {
        &mut self.base
    }

    fn initialize(&mut self, init_time: DateTime<Utc>) {
        self.base.initialize(init_time);
        self.positions = self.propagate(init_time);
        self.next_positions = self.positions.clone();
    }

    fn tick(&mut self, step: TimeDelta) {
        self.base.tick(step);
        let Some(then) = self.base.next_time() else {
            return;
        };
        self.next_positions = self.propagate(then);
        let names = self.names();
        for (i, sat) in self.next_positions.clone().into_iter().enumerate() {
            let min_el = geo::min_elevation(geo::altitude(sat), self.field_of_regard);
            let station = self.in_range(sat);
            for f in &mut self.fires {
                if f.detected[i].is_none() {
                    let fire = geo::surface(f.fire.latitude, f.fire.longitude);
                    if geo::elevation(sat, fire) >= min_el {
                        f.detected[i] = Some(then);
                        if f.first_detection.is_none() {
                            f.first_detection = Some(FireDetected {
                                fireId: f.fire.fireId,
                                detected: then,
                                detected_by: names[i].clone(),
                            });
                        }
                    }
                }
                if f.detected[i].is_some()
                    && f.reported[i].is_none()
                    && let Some(g) = station
                {
                    f.reported[i] = Some(then);
                    if f.first_report.is_none() {
                        f.first_report = Some(FireReported {
                            fireId: f.fire.fireId,
                            reported: then,
                            reported_by: names[i].clone(),
                            reported_to: g,
                        });
                    }
                }
            }
        }
    }

    fn tock(&mut self) {
        self.positions = std::mem::take(&mut self.next_positions);
        self.next_positions = self.positions.clone();
        for f in &mut self.fires {
            if let (false, Some(d)) = (f.announced_detection, &f.first_detection) {
                f.announced_detection = true;
                self.base
                    .notify(PROPERTY_FIRE_DETECTED, None, Some(d.clone()));
            }
            if let (false, Some(r)) = (f.announced_report, &f.first_report) {
                f.announced_report = true;
                self.base
                    .notify(PROPERTY_FIRE_REPORTED, None, Some(r.clone()));
            }
        }
        self.base.tock();
    }
}
