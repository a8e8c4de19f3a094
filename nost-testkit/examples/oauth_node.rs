//! Start the OAuth2 test node, print how to reach it, stop on Enter.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t = std::time::Instant::now();
    let broker = nost_testkit::OAuthBroker::start(Default::default())?;
    println!(
        "ready in {:.1} s: {:?}",
        t.elapsed().as_secs_f64(),
        broker.info()
    );
    if std::env::args().any(|a| a == "--wait") {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s)?;
    }
    Ok(())
}
