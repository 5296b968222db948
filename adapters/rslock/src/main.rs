//! locksim adapter for rslock's `LockManager` (Redlock over every URL in LOCKSIM_NODES), speaking
//! the client protocol of docs/client-protocol.md. With LOCKSIM_WATCHDOG=1 it runs the section in
//! rslock's own renewal, `LockManager::using`; without, `lock` then `unlock`.
use rslock::{LockError, LockManager};
use serde_json::{json, Value};
use std::{cell::Cell, env, error::Error, time::Duration};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::{net::TcpStream, time::sleep};

fn say(line: Value) {
    println!("{line}"); // stdout is line-buffered: each line leaves at once
}

/// `Unavailable: Resource is unavailable`: the error's variant name, then its message.
fn describe(e: &LockError) -> String {
    let debug = format!("{e:?}");
    format!(
        "{}: {e}",
        debug.split(['(', ' ']).next().unwrap_or_default()
    )
}

fn var(name: &str) -> Result<String, String> {
    env::var(name).map_err(|_| format!("{name} is not set"))
}

fn millis(name: &str) -> Result<Vec<u64>, Box<dyn Error>> {
    let parse = |s: &str| s.trim().parse().map_err(|e| format!("{name}: {s:?}: {e}"));
    Ok(var(name)?.split(',').map(parse).collect::<Result<_, _>>()?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error>> {
    let clients = var("LOCKSIM_NODES")?
        .split(',')
        .map(redis::Client::open)
        .collect::<Result<_, _>>()?;
    let mut manager = LockManager::from_clients(clients);
    let key = var("LOCKSIM_KEY")?;
    let ttl = Duration::from_millis(millis("LOCKSIM_TTL_MS")?[0]);
    let (works, thinks) = (millis("LOCKSIM_WORK_MS")?, millis("LOCKSIM_THINK_MS")?);
    let (timeout, delay) = (
        millis("LOCKSIM_ACQUIRE_TIMEOUT_MS")?[0],
        millis("LOCKSIM_RETRY_DELAY_MS")?[0].max(1),
    );
    // rslock takes a count of attempts and waits a random 0..delay between two: on average the
    // waits of 1 + 2 * timeout / delay attempts add up to the acquire timeout.
    manager.set_retry(
        u32::try_from(1 + 2 * timeout / delay)?,
        Duration::from_millis(delay),
    );
    let watchdog = var("LOCKSIM_WATCHDOG")? == "1";
    let (read, mut write) = TcpStream::connect(var("LOCKSIM_RESOURCE")?)
        .await?
        .into_split();
    let mut read = BufReader::new(read);
    let mut reply = String::new();
    for i in 0..var("LOCKSIM_ITERATIONS")?.parse::<usize>()? {
        let (work, think) = (
            Duration::from_millis(works[i]),
            Duration::from_millis(thinks[i]),
        );
        let entered = Cell::new(false);
        let mut section = async || -> std::io::Result<()> {
            entered.set(true);
            say(json!({"event": "acquired"}));
            write.write_all(b"WRITE\n").await?;
            read.read_line(&mut reply).await?;
            sleep(work).await;
            write.write_all(b"WRITE\n").await?;
            read.read_line(&mut reply).await?;
            say(json!({"event": "releasing"}));
            Ok(())
        };
        say(json!({"event": "acquiring"}));
        if watchdog {
            // using(): acquires, renews at validity - 500 ms, releases. Its acquire retries without
            // limit: give up (drop it) when the acquire timeout passes before the section began.
            let give_up = async {
                sleep(Duration::from_millis(timeout)).await;
                if entered.get() {
                    std::future::pending::<()>().await;
                }
            };
            let result = tokio::select! {
                biased;
                result = manager.using(key.as_bytes(), ttl, section) => result,
                () = give_up => {
                    say(json!({"event": "failed", "reason": "timeout"}));
                    sleep(think).await;
                    continue;
                }
            };
            match result {
                Ok(done) => {
                    done?;
                    say(json!({"event": "released", "ok": true}));
                }
                Err(e) if entered.get() => say(json!({"event": "lost", "reason": describe(&e)})),
                Err(e) => say(json!({"event": "failed", "reason": describe(&e)})),
            }
        } else {
            match manager.lock(key.as_bytes(), ttl).await {
                Ok(lock) => {
                    section().await?;
                    manager.unlock(&lock).await; // best effort: rslock reports nothing back
                    say(json!({"event": "released", "ok": true}));
                }
                Err(e) => say(json!({"event": "failed", "reason": describe(&e)})),
            }
        }
        sleep(think).await;
    }
    Ok(())
}
