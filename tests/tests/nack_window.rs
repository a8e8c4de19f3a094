//! A broker that nacks for a while (a full `reject-publish` queue here; a
//! quorum queue electing a leader after a node loss in a cluster) loses
//! nothing: nacked messages are retried for the nack retry window
//! (`servers.rabbitmq.nack_retry_window`, 60 s by default), and while they
//! wait they count against `queue_max_size`, so publishers feel
//! back-pressure instead of the retries piling up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nost_amqp::{NackRetry, Outgoing, Session, SessionEvent};
use nost_testkit::{QueuePolicy, declare_bound_queue, local_settings_with, unique};
use tokio::sync::broadcast;

#[tokio::test]
async fn a_nack_burst_inside_the_window_is_carried_through_exactly_once() {
    let name = unique("nack-burst");
    let queue = format!("{name}.q");
    let policy = QueuePolicy::set(&queue, r#"{"max-length":5,"overflow":"reject-publish"}"#);
    let settings = local_settings_with(&name, |r| r.queue_max_size = 50);
    // The default window, read from the (default) configuration.
    assert_eq!(settings.nack_retry, NackRetry::default());
    let session = Session::connect(settings).await.unwrap();
    declare_bound_queue(&session, &name, &queue, &format!("{name}.#")).await;
    let mut events = session.events();

    // The queue takes 5; every later message is nacked until the policy goes.
    const N: usize = 2000;
    let pushed = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let (session, name, pushed) = (session.clone(), name.clone(), pushed.clone());
        tokio::spawn(async move {
            for i in 0..N {
                session
                    .publish(Outgoing {
                        exchange: name.clone(),
                        routing_key: format!("{name}.app.seq"),
                        body: i.to_string().into_bytes(),
                    })
                    .await
                    .unwrap();
                pushed.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Nacks for 7 s: longer than the 1.4 s the publisher used to retry,
    // and long enough for the publisher to renew its channel (after 5 s of
    // nacks on one), which must not duplicate or lose anything either.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let mut refused = Vec::new();
    loop {
        match events.try_recv() {
            Ok(SessionEvent::PublishRefused { refusal }) => refused.push(refusal.to_string()),
            Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    assert!(
        refused.is_empty(),
        "nothing refused inside the window: {} refused, first: {:?}",
        refused.len(),
        refused.first()
    );
    let accepted = pushed.load(Ordering::Relaxed);
    assert!(
        accepted < N,
        "the waiting retries fill the buffer: publish waits ({accepted} of {N} accepted)"
    );
    // The queue takes messages again.
    drop(policy);
    tokio::time::timeout(Duration::from_secs(60), publisher)
        .await
        .expect("publishing goes on once the broker takes messages again")
        .unwrap();
    if let Err(e) = session.flush(Duration::from_secs(60)).await {
        panic!("every message confirmed, none refused: {e}");
    }

    // Count every message at the queue: each exactly once.
    let mut sub = session.consume(&queue, 500).await.unwrap();
    let mut seen = vec![0u32; N];
    let mut order = Vec::with_capacity(N);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while order.len() < N {
        let Ok(Some(d)) = tokio::time::timeout_at(deadline, sub.recv()).await else {
            break;
        };
        let i: usize = std::str::from_utf8(&d.body).unwrap().parse().unwrap();
        seen[i] += 1;
        order.push(i);
        d.ack().await.unwrap();
    }
    let missing = seen.iter().filter(|&&n| n == 0).count();
    let twice = seen.iter().filter(|&&n| n > 1).count();
    assert_eq!(
        (order.len(), missing, twice),
        (N, 0, 0),
        "every message once"
    );
    // The five the queue took at once came first, in order (a retried
    // message may land after later ones: the documented exception).
    assert_eq!(order[..5], [0, 1, 2, 3, 4]);
    session.delete_queue(&queue).await.unwrap();
    session.shut_down(Duration::from_secs(5)).await;
}
