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

/// Why an NTP query gave no offset.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NtpError {
    /// The server did not answer in time, could not be resolved or reached,
    /// or answered with something that is not SNTP.
    #[error(
        "could not get the time from NTP server {host}: {source}; check execution.general.ntp_host \
         (or set set_offset: false to use the system clock as it is)"
    )]
    Query {
        /// The `ntp_host` asked.
        host: String,
        /// rsntp's reason (I/O, timeout, protocol).
        #[source]
        source: rsntp::SynchronizationError,
    },
    /// The server answered with an offset too large to apply.
    #[error(
        "NTP server {host} answered with a clock offset out of range: {source}; check \
         execution.general.ntp_host and the system clock (or set set_offset: false)"
    )]
    OffsetOutOfRange {
        /// The `ntp_host` asked.
        host: String,
        /// rsntp's reason.
        #[source]
        source: rsntp::ConversionError,
    },
}

/// Query `host` once: the offset to add to the system clock.
pub(crate) async fn query_offset(host: &str) -> Result<TimeDelta, NtpError> {
    let mut client = rsntp::AsyncSntpClient::new();
    client.set_timeout(QUERY_TIMEOUT);
    let result = client
        .synchronize(host)
        .await
        .map_err(|source| NtpError::Query {
            host: host.to_owned(),
            source,
        })?;
    result
        .clock_offset()
        .into_chrono_duration()
        .map_err(|source| NtpError::OffsetOutOfRange {
            host: host.to_owned(),
            source,
        })
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
                    tracing::warn!(target: "nost_app", %host, error = %e, "NTP query failed; keeping the current wallclock offset")
                }
            }
            tokio::select! {
                _ = closing.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::error::Error as _;

    use super::*;

    #[tokio::test]
    async fn an_unanswered_query_names_the_host_keeps_the_cause_and_says_what_to_do() {
        // A loopback port nobody listens on: refused or timed out, within 2 s.
        let port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let err = query_offset(&host).await.unwrap_err();
        assert!(matches!(err, NtpError::Query { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.contains(&host) && text.contains("execution.general.ntp_host"),
            "{text}"
        );
        assert!(err.source().is_some(), "keeps rsntp's reason");
    }
}
