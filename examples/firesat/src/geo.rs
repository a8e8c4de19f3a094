//! Orbit and view geometry: SGP4 propagation (TEME) rotated to an
//! Earth-fixed frame by Greenwich mean sidereal time, on a spherical Earth
//! of the mean radius nost_tools' FireSat uses.

use chrono::{DateTime, Utc};

/// The Earth's mean radius (m): (2 × equatorial + polar) / 3, as FireSat.
pub const EARTH_MEAN_RADIUS: f64 = (2.0 * 6_378_137.0 + 6_356_752.314_245_179) / 3.0;

/// A satellite propagated with SGP4 from a TLE.
pub struct Orbit {
    /// The satellite's name (the TLE's title line).
    pub name: String,
    elements: sgp4::Elements,
    constants: sgp4::Constants,
}

impl Orbit {
    /// From a TLE's title and two lines.
    pub fn from_tle(name: &str, line1: &str, line2: &str) -> anyhow::Result<Orbit> {
        let elements =
            sgp4::Elements::from_tle(Some(name.to_owned()), line1.as_bytes(), line2.as_bytes())?;
        let constants = sgp4::Constants::from_elements(&elements)?;
        Ok(Orbit {
            name: name.trim().to_owned(),
            elements,
            constants,
        })
    }

    /// Earth-fixed position (m) at `t`.
    pub fn position(&self, t: DateTime<Utc>) -> anyhow::Result<[f64; 3]> {
        let epoch = self.elements.datetime.and_utc();
        let minutes = (t - epoch).num_microseconds().unwrap_or(i64::MAX) as f64 / 60e6;
        let p = self.constants.propagate(sgp4::MinutesSinceEpoch(minutes))?;
        let g = gmst(julian_date(t));
        let [x, y, z] = p.position.map(|v| v * 1000.0);
        Ok([g.cos() * x + g.sin() * y, -g.sin() * x + g.cos() * y, z])
    }
}

/// Julian date (UTC taken as UT1).
pub fn julian_date(t: DateTime<Utc>) -> f64 {
    t.timestamp_micros() as f64 / 86_400e6 + 2_440_587.5
}

/// Greenwich mean sidereal time (rad), IAU-82 (Vallado's `gstime`).
pub fn gmst(jd_ut1: f64) -> f64 {
    let tut1 = (jd_ut1 - 2_451_545.0) / 36_525.0;
    let secs = -6.2e-6 * tut1.powi(3)
        + 0.093_104 * tut1 * tut1
        + (876_600.0 * 3600.0 + 8_640_184.812_866) * tut1
        + 67_310.548_41;
    (secs.to_radians() / 240.0).rem_euclid(std::f64::consts::TAU)
}

/// Earth-fixed position (m) of a point on the surface.
pub fn surface(lat_deg: f64, lon_deg: f64) -> [f64; 3] {
    let (lat, lon) = (lat_deg.to_radians(), lon_deg.to_radians());
    [
        EARTH_MEAN_RADIUS * lat.cos() * lon.cos(),
        EARTH_MEAN_RADIUS * lat.cos() * lon.sin(),
        EARTH_MEAN_RADIUS * lat.sin(),
    ]
}

fn norm(v: [f64; 3]) -> f64 {
    (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt()
}

/// Elevation (deg) of `sat` above the horizon of surface point `ground`.
pub fn elevation(sat: [f64; 3], ground: [f64; 3]) -> f64 {
    let d = [sat[0] - ground[0], sat[1] - ground[1], sat[2] - ground[2]];
    let dot = d[0] * ground[0] + d[1] * ground[1] + d[2] * ground[2];
    (dot / (norm(d) * norm(ground))).asin().to_degrees()
}

/// Altitude (m) above the mean sphere.
pub fn altitude(sat: [f64; 3]) -> f64 {
    norm(sat) - EARTH_MEAN_RADIUS
}

/// Sub-satellite latitude and longitude (deg).
pub fn subpoint(sat: [f64; 3]) -> (f64, f64) {
    let lat = (sat[2] / norm(sat)).asin().to_degrees();
    let lon = sat[1].atan2(sat[0]).to_degrees();
    (lat, lon)
}

/// The minimum elevation (deg) at which a sensor of `field_of_regard` (deg)
/// at `altitude` (m) sees a point (FireSat's `compute_min_elevation`).
pub fn min_elevation(altitude: f64, field_of_regard: f64) -> f64 {
    let sin_eta = (field_of_regard / 2.0).to_radians().sin();
    let sin_rho = EARTH_MEAN_RADIUS / (EARTH_MEAN_RADIUS + altitude);
    let cos_epsilon = sin_eta / sin_rho;
    if cos_epsilon > 1.0 {
        0.0
    } else {
        cos_epsilon.acos().to_degrees()
    }
}

/// The radius (m) of the sensor's circle on the ground (FireSat's
/// `compute_sensor_radius`).
pub fn sensor_radius(altitude: f64, min_elevation: f64) -> f64 {
    let sin_rho = EARTH_MEAN_RADIUS / (EARTH_MEAN_RADIUS + altitude);
    let eta = (min_elevation.to_radians().cos() * sin_rho)
        .asin()
        .to_degrees();
    let half = 90.0 - eta - min_elevation;
    if half < 0.0 {
        0.0
    } else {
        EARTH_MEAN_RADIUS * half.to_radians()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_point_overhead_is_at_90_degrees_and_the_antipode_below() {
        let g = surface(10.0, 20.0);
        let up = g.map(|v| v * 1.1);
        assert!((elevation(up, g) - 90.0).abs() < 1e-9);
        assert!(elevation(g.map(|v| -v), g) < -89.0);
    }

    #[test]
    fn min_elevation_and_radius_behave() {
        // 700 km, 50° field of regard: a steep angle and a few hundred km.
        let e = min_elevation(700e3, 50.0);
        assert!(e > 50.0 && e < 70.0, "{e}");
        let r = sensor_radius(700e3, e);
        assert!(r > 200e3 && r < 500e3, "{r}");
    }

    #[test]
    fn terra_is_in_low_earth_orbit() {
        let tle = include_str!("../data/tles.txt");
        let lines: Vec<&str> = tle.lines().collect();
        let o = Orbit::from_tle(lines[0], lines[1], lines[2]).unwrap();
        let t = "2023-08-04T12:00:00Z".parse().unwrap();
        let alt = altitude(o.position(t).unwrap());
        assert!(alt > 650e3 && alt < 750e3, "{alt}");
    }
}
