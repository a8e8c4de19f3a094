//! The four FireSat applications on one broker, and the summary of a run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nost_app::simulator::{Change, Mode, SimEvent, Simulator, WallclockTimeIntervalPublisher};
use nost_app::{Application, ManagedApplication, Manager, Message, StartOptions, TestPlan};
use nost_config::Config;
use tokio::sync::mpsc;

use crate::constellation::{Constellation, PROPERTY_FIRE_DETECTED, PROPERTY_FIRE_REPORTED};
use crate::data;
use crate::geo;
use crate::messages::{FireDetected, FireReported, FireStarted, GroundLocation, SatelliteStatus};

/// What a run uses besides the configuration.
pub struct Scenario {
    /// Three-line TLEs.
    pub tles: String,
    /// The fires CSV.
    pub fires: String,
    /// The ground stations CSV.
    pub grounds: String,
    /// The sensors' field of regard (deg).
    pub field_of_regard: f64,
    /// Wallclock step of the `constellation.location` publisher.
    pub position_step: TimeDelta,
    /// Run the `ground` application here (`false`: another process, e.g.
    /// a Python nost_tools one, announces the stations).
    pub with_ground: bool,
}

impl Default for Scenario {
    /// The files shipped in `data/`, a 110° field of regard (MODIS-like), positions every
    /// wallclock second.
    fn default() -> Self {
        Scenario {
            tles: data::TLES.to_owned(),
            fires: data::FIRES.to_owned(),
            grounds: data::GROUNDS.to_owned(),
            field_of_regard: 110.0,
            position_step: TimeDelta::seconds(1),
            with_ground: true,
        }
    }
}

/// One fire as the `fire` application saw it.
#[derive(Debug, Clone, Default)]
pub struct FireRecord {
    /// Ignition.
    pub start: Option<DateTime<Utc>>,
    /// First detection, and by which satellite.
    pub detected: Option<(DateTime<Utc>, String)>,
    /// First report: when, by which satellite, to which station.
    pub reported: Option<(DateTime<Utc>, String, u32)>,
}

/// What a run produced, as counted by the `fire` application from the
/// messages it received.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Every fire by id.
    pub fires: BTreeMap<u32, FireRecord>,
    /// `constellation.location` messages received.
    pub positions: usize,
}

impl Summary {
    /// Fires started (`fire.location` received).
    pub fn started(&self) -> usize {
        self.fires.values().filter(|f| f.start.is_some()).count()
    }
    /// Fires detected (`constellation.detected` received).
    pub fn detected(&self) -> usize {
        self.fires.values().filter(|f| f.detected.is_some()).count()
    }
    /// Fires reported (`constellation.reported` received).
    pub fn reported(&self) -> usize {
        self.fires.values().filter(|f| f.reported.is_some()).count()
    }
    /// Scenario time from ignition to report, per reported fire.
    pub fn latencies(&self) -> Vec<TimeDelta> {
        self.fires
            .values()
            .filter_map(|f| Some(f.reported.as_ref()?.0 - f.start?))
            .collect()
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "fires started:  {}", self.started())?;
        writeln!(f, "fires detected: {}", self.detected())?;
        writeln!(f, "fires reported: {}", self.reported())?;
        let l = self.latencies();
        if !l.is_empty() {
            let mean = l.iter().map(|d| d.num_seconds()).sum::<i64>() / l.len() as i64;
            let max = l.iter().map(|d| d.num_seconds()).max().unwrap_or(0);
            let min = l.iter().map(|d| d.num_seconds()).min().unwrap_or(0);
            writeln!(
                f,
                "ignition to report (scenario time): mean {} min, min {} min, max {} min",
                mean / 60,
                min / 60,
                max / 60
            )?;
        }
        for (id, r) in &self.fires {
            let d = r
                .detected
                .as_ref()
                .map_or("-".to_owned(), |(t, s)| format!("{t} by {s}"));
            let p = r.reported.as_ref().map_or("-".to_owned(), |(t, s, g)| {
                format!("{t} by {s} to station {g}")
            });
            writeln!(f, "  fire {id}: detected {d}; reported {p}")?;
        }
        write!(f, "satellite positions received: {}", self.positions)
    }
}

/// Messages from synchronous observers, sent in order by a task.
fn outbox(app: &Application, sent: Arc<AtomicUsize>) -> mpsc::UnboundedSender<(String, String)> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, String)>();
    let app = app.clone();
    tokio::spawn(async move {
        while let Some((topic, body)) = rx.recv().await {
            match app.send_message(&topic, &body).await {
                Ok(()) => {
                    sent.fetch_add(1, Ordering::SeqCst);
                }
                Err(e) => tracing::warn!(%topic, error = %e, "not sent"),
            }
        }
    });
    tx
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Run FireSat: a manager (the YAML's `execution.manager`) and the
/// managed applications `fire`, `ground` and `constellation` under
/// `prefix`; returns when all have terminated and every detection and
/// report sent has been received.
pub async fn run(
    config: &Config,
    prefix: &str,
    options: impl Fn() -> StartOptions,
    scenario: &Scenario,
) -> anyhow::Result<Summary> {
    let fires = data::fires(&scenario.fires)?;
    let grounds = data::grounds(&scenario.grounds)?;
    let orbits = data::orbits(&scenario.tles)?;
    let summary = Arc::new(Mutex::new(Summary::default()));
    let sent = Arc::new(AtomicUsize::new(0));

    // fire: starts the fires of the CSV as scenario time passes them, and
    // keeps the record of what happened to each.
    let fire = ManagedApplication::start_up("fire", prefix, config, options()).await?;
    let tx = outbox(fire.app(), Arc::new(AtomicUsize::new(0)));
    let schedule = fires.clone();
    fire.app()
        .simulator()
        .add_observer(Arc::new(move |_: &Simulator, ev: &SimEvent| {
            if let SimEvent::TimeChanged { old, new } = ev {
                for f in schedule
                    .iter()
                    .filter(|f| f.start > *old && f.start <= *new)
                {
                    let _ = tx.send(("location".into(), to_json(f)));
                }
            }
        }));
    let s = summary.clone();
    fire.app()
        .add_message_callback("fire", "location", move |m: Message| {
            let s = s.clone();
            async move {
                let f: FireStarted = m.json()?;
                lock(&s).fires.entry(f.fireId).or_default().start = Some(f.start);
                Ok(())
            }
        })
        .await?;
    let s = summary.clone();
    fire.app()
        .add_message_callback("constellation", "detected", move |m: Message| {
            let s = s.clone();
            async move {
                let d: FireDetected = m.json()?;
                lock(&s).fires.entry(d.fireId).or_default().detected =
                    Some((d.detected, d.detected_by));
                Ok(())
            }
        })
        .await?;
    let s = summary.clone();
    fire.app()
        .add_message_callback("constellation", "reported", move |m: Message| {
            let s = s.clone();
            async move {
                let r: FireReported = m.json()?;
                lock(&s).fires.entry(r.fireId).or_default().reported =
                    Some((r.reported, r.reported_by, r.reported_to));
                Ok(())
            }
        })
        .await?;
    let s = summary.clone();
    fire.app()
        .add_message_callback("constellation", "location", move |m: Message| {
            let s = s.clone();
            async move {
                let _: SatelliteStatus = m.json()?;
                lock(&s).positions += 1;
                Ok(())
            }
        })
        .await?;

    // ground: announces its stations when the run starts executing.
    let mut ground = None;
    if scenario.with_ground {
        let app = ManagedApplication::start_up("ground", prefix, config, options()).await?;
        let tx = outbox(app.app(), Arc::new(AtomicUsize::new(0)));
        let stations: Vec<GroundLocation> = grounds.clone();
        app.app()
            .simulator()
            .add_observer(Arc::new(move |_: &Simulator, ev: &SimEvent| {
                if let SimEvent::ModeChanged {
                    old: Mode::Initialized,
                    new: Mode::Executing,
                } = ev
                {
                    for g in &stations {
                        let _ = tx.send(("location".into(), to_json(g)));
                    }
                }
            }));
        ground = Some(app);
    }

    // constellation: the entity is added to a simulator before start_up.
    let sim = Simulator::new();
    let entity = sim.add_entity(Constellation::new(
        "constellation",
        orbits,
        scenario.field_of_regard,
    ))?;
    let constellation = ManagedApplication::start_up(
        "constellation",
        prefix,
        config,
        StartOptions {
            simulator: Some(sim),
            ..options()
        },
    )
    .await?;
    let tx = outbox(constellation.app(), sent.clone());
    let queued = Arc::new(AtomicUsize::new(0));
    let q = queued.clone();
    entity
        .observable()
        .add_observer(Arc::new(move |c: &Change| {
            let body = match c.property.as_str() {
                PROPERTY_FIRE_DETECTED => c
                    .new_value::<Option<FireDetected>>()
                    .cloned()
                    .flatten()
                    .map(|d| to_json(&d)),
                PROPERTY_FIRE_REPORTED => c
                    .new_value::<Option<FireReported>>()
                    .cloned()
                    .flatten()
                    .map(|r| to_json(&r)),
                _ => None,
            };
            if let Some(body) = body {
                q.fetch_add(1, Ordering::SeqCst);
                let _ = tx.send((c.property.clone(), body));
            }
        }));
    let tx = outbox(constellation.app(), Arc::new(AtomicUsize::new(0)));
    let positions = WallclockTimeIntervalPublisher::new(
        Some(scenario.position_step),
        None,
        move |sim: &Simulator| {
            let Some(c) = sim.entity::<Constellation>("constellation") else {
                return;
            };
            let c = c.lock();
            for (i, (sat, name)) in c.positions().iter().zip(c.names()).enumerate() {
                let alt = geo::altitude(*sat);
                let (lat, lon) = geo::subpoint(*sat);
                let status = SatelliteStatus {
                    id: i as u32,
                    name,
                    latitude: lat,
                    longitude: lon,
                    altitude: alt,
                    radius: geo::sensor_radius(alt, geo::min_elevation(alt, c.field_of_regard())),
                    commRange: c.in_range(*sat).is_some(),
                    time: sim.time(),
                };
                let _ = tx.send(("location".into(), to_json(&status)));
            }
        },
    )?;
    constellation
        .app()
        .simulator()
        .add_observer(Arc::new(positions));
    // The on_fire / on_ground pattern: callbacks reach the entity by name
    // and type while the simulator runs.
    let a = constellation.app().clone();
    constellation
        .app()
        .add_message_callback("fire", "location", move |m: Message| {
            let a = a.clone();
            async move {
                let f: FireStarted = m.json()?;
                a.simulator()
                    .with_entity::<Constellation, _>("constellation", |c| c.on_fire(f))
                    .ok_or("no constellation entity")?;
                Ok(())
            }
        })
        .await?;
    let a = constellation.app().clone();
    constellation
        .app()
        .add_message_callback("ground", "location", move |m: Message| {
            let a = a.clone();
            async move {
                let g: GroundLocation = m.json()?;
                a.simulator()
                    .with_entity::<Constellation, _>("constellation", |c| c.on_ground(g))
                    .ok_or("no constellation entity")?;
                Ok(())
            }
        })
        .await?;

    let manager = Manager::start_up("manager", prefix, config, options()).await?;
    let plan = TestPlan::from_config(
        config
            .execution
            .manager
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the YAML has no execution.manager section"))?,
    )?;
    manager.execute_test_plan(plan).await?;
    let apps: Vec<&ManagedApplication> = [Some(&fire), ground.as_ref(), Some(&constellation)]
        .into_iter()
        .flatten()
        .collect();
    for app in &apps {
        tokio::time::timeout(Duration::from_secs(30), app.wait_terminated())
            .await
            .map_err(|_| anyhow::anyhow!("{} did not terminate", app.app().name()))?;
    }
    // Every detection and report sent has arrived at `fire`.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let want = queued.load(Ordering::SeqCst);
        let got = {
            let s = lock(&summary);
            s.detected() + s.reported()
        };
        if (sent.load(Ordering::SeqCst) >= want && got >= want)
            || tokio::time::Instant::now() > deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    manager.app().shut_down().await;
    for app in &apps {
        app.app().shut_down().await;
    }
    let s = lock(&summary).clone();
    Ok(s)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
