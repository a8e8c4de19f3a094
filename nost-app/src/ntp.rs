//! Wallclock correction with SNTP (`set_offset`, `ntp_host`,
//! `wallclock_offset_refresh_interval`).
//!
//! Unlike `nost_tools`, which waits a whole refresh interval (3 h by
//! default) before its first query, the first correction happens at
//! start-up. A failed query is a warning; the previous offset stays.

use std::time::Duration;

use chrono::TimeDelta;
use nost_config::Config;

use crate::app::Application;

const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Query `host` once: the offset to add to the system clock.
pub(crate) async fn query_offset(host: &str) -> Result<TimeDelta, String> {
    let mut client = rsntp::AsyncSntpClient::new();
    client.set_timeout(QUERY_TIMEOUT);
    let result = client.synchronize(host).await.map_err(|e| e.to_string())?;
    let offset = result.clock_offset();
    offset.into_chrono_duration().map_err(|e| e.to_string())
}

/// Correct the application's simulator clock now and every refresh interval.
pub(crate) fn start(app: &Application, config: &Config) {
    let general = config.execution.general_or_default();
    let host = general.ntp_host.clone();
    let every = Duration::from_secs(general.wallclock_offset_refresh_interval.max(1));
    let sim = app.simulator().clone();
    let closing = app.closing();
    tokio::spawn(async move {
        loop {
            match query_offset(&host).await {
                Ok(offset) => {
                    tracing::info!(target: "nost_app", %host, offset_ms = offset.num_milliseconds(), "wallclock offset set from NTP");
                    if let Err(e) = sim.set_wallclock_offset(offset) {
                        tracing::warn!(target: "nost_app", error = %e, "could not apply the NTP offset now");
                    }
                }
                Err(e) => {
                    tracing::warn!(target: "nost_app", %host, error = %e, "NTP query failed; keeping the current wallclock offset (set execution.general.ntp_host, or set_offset: false)")
                }
            }
            tokio::select! {
                _ = closing.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}
