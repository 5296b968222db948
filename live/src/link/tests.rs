use super::{
    Direction, Link, LinkControl,
    PartitionMode::{Blackhole, Hold, Reset},
    Shaping,
};
use scenario::{Dist, Network};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;

/// A plain TCP echo server on a free loopback port (its task runs on the test's runtime).
async fn echo() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn connect(link: &Link) -> TcpStream {
    TcpStream::connect(("127.0.0.1", link.port()))
        .await
        .unwrap()
}

/// Reads exactly `n` bytes (within a generous bound, so a broken relay fails the test).
async fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut buf))
        .await
        .expect("the bytes arrive")
        .unwrap();
    buf
}

/// Nothing arrives on `s` within a short window (a held link delivers nothing).
async fn nothing_arrives(s: &mut TcpStream) {
    let mut buf = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_millis(100), s.read(&mut buf)).await;
    assert!(read.is_err(), "bytes crossed a cut link: {read:?}");
}

#[tokio::test]
async fn bytes_pass_unchanged_both_ways() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    let mut s = connect(&link).await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (mut r, mut w) = s.split();
    let (_, got) = tokio::join!(async { w.write_all(&data).await.unwrap() }, async {
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).await.unwrap();
        got
    });
    assert_eq!(got, data);
}

#[tokio::test]
async fn a_held_link_delivers_nothing_until_healed_then_everything_in_order() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    let mut s = connect(&link).await;
    s.write_all(b"before").await.unwrap();
    assert_eq!(read_n(&mut s, 6).await, b"before");
    link.control().cut(Hold);
    assert!(link.control().is_cut());
    for part in [&b"one,"[..], b"two,", b"three"] {
        s.write_all(part).await.unwrap();
    }
    nothing_arrives(&mut s).await;
    link.control().heal(Hold);
    assert_eq!(read_n(&mut s, 13).await, b"one,two,three");
}

#[tokio::test]
async fn cuts_count_and_a_connection_made_during_a_cut_goes_through_after_the_heal() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    link.control().cut(Hold);
    link.control().cut(Hold);
    let mut s = connect(&link).await;
    s.write_all(b"early").await.unwrap();
    link.control().heal(Hold);
    nothing_arrives(&mut s).await;
    link.control().heal(Hold);
    assert_eq!(read_n(&mut s, 5).await, b"early");
}

#[tokio::test]
async fn two_links_are_independent() {
    let target = echo().await;
    let (a, b) = (
        Link::start(&Handle::current(), target.clone()).unwrap(),
        Link::start(&Handle::current(), target.clone()).unwrap(),
    );
    let (mut sa, mut sb) = (connect(&a).await, connect(&b).await);
    a.control().cut(Hold);
    sa.write_all(b"held").await.unwrap();
    sb.write_all(b"free").await.unwrap();
    assert_eq!(read_n(&mut sb, 4).await, b"free");
    nothing_arrives(&mut sa).await;
    a.control().heal(Hold);
    assert_eq!(read_n(&mut sa, 4).await, b"held");
}

#[tokio::test]
async fn a_delay_holds_each_chunk_at_least_that_long() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    let mut s = connect(&link).await;
    link.control()
        .set_delay(Direction::FromTarget, Duration::from_millis(80));
    let sent = Instant::now();
    s.write_all(b"late").await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, b"late");
    assert!(sent.elapsed() >= Duration::from_millis(80));
    link.control()
        .set_delay(Direction::FromTarget, Duration::ZERO);
    link.control()
        .set_delay(Direction::ToTarget, Duration::from_millis(80));
    let sent = Instant::now();
    s.write_all(b"late").await.unwrap();
    assert_eq!(read_n(&mut s, 4).await, b"late");
    assert!(sent.elapsed() >= Duration::from_millis(80));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_link_closes_its_connections_and_leaves_no_task() {
    let target = echo().await;
    let metrics = Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let link = Link::start(&Handle::current(), target.clone()).unwrap();
    let port = link.port();
    let mut s = connect(&link).await;
    s.write_all(b"x").await.unwrap();
    assert_eq!(read_n(&mut s, 1).await, b"x");
    // A held connection too: its queued bytes must not keep anything alive.
    link.control().cut(Hold);
    s.write_all(b"held").await.unwrap();
    drop(link);
    // The client end sees the relay close.
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the relay closes the connection");
    assert!(matches!(n, Ok(0) | Err(_)), "read {n:?} after the drop");
    // Every task the link started (and the echo's task for its connection) ends.
    let deadline = Instant::now() + Duration::from_secs(10);
    while metrics.num_alive_tasks() > before {
        assert!(Instant::now() < deadline, "tasks left running");
        tokio::task::yield_now().await;
    }
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

/// Whether the connection `s` was reset (or closed) by the relay: a read gives an error or
/// end of stream (within a generous bound, so a relay that never resets fails the test).
async fn is_reset(s: &mut TcpStream) -> std::io::Result<usize> {
    let mut buf = [0u8; 64];
    tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .expect("the relay ends the connection")
}

#[tokio::test]
async fn a_reset_cut_resets_open_connections_at_once_and_refuses_new_ones_until_healed() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    let mut s = connect(&link).await;
    s.write_all(b"up").await.unwrap();
    assert_eq!(read_n(&mut s, 2).await, b"up");
    let cut_at = Instant::now();
    link.control().cut(Reset);
    // The open connection is reset without anything being written to it: RST, not FIN.
    let read = is_reset(&mut s).await;
    assert!(
        matches!(&read, Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(cut_at.elapsed() < Duration::from_secs(5));
    // A new connection is accepted by the listener and reset at once.
    let mut fresh = connect(&link).await;
    let _ = fresh.write_all(b"x").await;
    let read = is_reset(&mut fresh).await;
    assert!(matches!(read, Err(_) | Ok(0)), "{read:?}");
    link.control().heal(Reset);
    let mut after = connect(&link).await;
    after.write_all(b"again").await.unwrap();
    assert_eq!(read_n(&mut after, 5).await, b"again");
}

#[tokio::test]
async fn a_blackhole_drops_what_it_meets_and_closes_the_connections_that_lost_bytes_at_the_heal() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    let (mut lost, mut quiet) = (connect(&link).await, connect(&link).await);
    for s in [&mut lost, &mut quiet] {
        s.write_all(b"up").await.unwrap();
        assert_eq!(read_n(s, 2).await, b"up");
    }
    link.control().cut(Blackhole);
    lost.write_all(b"gone").await.unwrap();
    // Nothing comes back (the echo never saw it), and the connection stays open meanwhile.
    nothing_arrives(&mut lost).await;
    link.control().heal(Blackhole);
    // The connection that lost bytes is closed at the heal; its lost bytes never arrive.
    let read = is_reset(&mut lost).await;
    assert!(matches!(read, Err(_) | Ok(0)), "{read:?}");
    // The one that lost nothing carries on.
    quiet.write_all(b"still").await.unwrap();
    assert_eq!(read_n(&mut quiet, 5).await, b"still");
}

#[tokio::test]
async fn a_connection_made_during_a_blackhole_loses_its_bytes_and_is_closed_at_the_heal() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    link.control().cut(Blackhole);
    let mut s = connect(&link).await;
    s.write_all(b"into the void").await.unwrap();
    nothing_arrives(&mut s).await;
    link.control().heal(Blackhole);
    let read = is_reset(&mut s).await;
    assert!(matches!(read, Err(_) | Ok(0)), "{read:?}");
}

#[tokio::test]
async fn of_nested_cuts_the_strongest_mode_acts() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    let mut s = connect(&link).await;
    s.write_all(b"up").await.unwrap();
    assert_eq!(read_n(&mut s, 2).await, b"up");
    link.control().cut(Hold);
    link.control().cut(Blackhole);
    s.write_all(b"dropped").await.unwrap();
    nothing_arrives(&mut s).await;
    // The blackhole heals while the hold remains: the connection lost bytes, and no
    // blackhole or reset cuts it any more, so it is closed now.
    link.control().heal(Blackhole);
    let read = is_reset(&mut s).await;
    assert!(matches!(read, Err(_) | Ok(0)), "{read:?}");
    link.control().heal(Hold);
    assert!(!link.control().is_cut());
}

fn shaped(target: String, latency: Dist, loss: f64, seed: u64) -> Link {
    let network = Network {
        latency,
        loss,
        ..Network::default()
    };
    let shaping = Shaping::client_link(&network, seed, "A->redis-1");
    Link::start_shaped(
        &Handle::current(),
        target,
        LinkControl::default(),
        Some(shaping),
    )
    .unwrap()
}

#[tokio::test]
async fn a_shaped_link_delays_every_frame_each_way_by_at_least_its_latency() {
    let link = shaped(echo().await, Dist::FixedMs(30.0), 0.0, 1);
    let mut s = connect(&link).await;
    for _ in 0..3 {
        let sent = Instant::now();
        s.write_all(b"*1\r\n$4\r\nPING\r\n").await.unwrap();
        assert_eq!(read_n(&mut s, 14).await, b"*1\r\n$4\r\nPING\r\n");
        // 30 ms to the echo, 30 ms back.
        assert!(
            sent.elapsed() >= Duration::from_millis(60),
            "{:?}",
            sent.elapsed()
        );
    }
}

/// How many frames the shaper of `seed` delivers, each way, on a link's first connection
/// number `conn` before it loses one (the draws do not depend on what the frames hold).
fn first_lost(seed: u64, conn: u64) -> usize {
    let network = Network {
        latency: Dist::FixedMs(0.0),
        loss: 0.2,
        ..Network::default()
    };
    let shaping = Shaping::client_link(&network, seed, "A->redis-1");
    [Direction::ToTarget, Direction::FromTarget]
        .into_iter()
        .map(|dir| {
            let mut s = shaping.shaper(conn, dir);
            let mut out = Vec::new();
            (0..)
                .find(|_| {
                    s.push(Instant::now(), b"+OK\r\n", &mut out);
                    s.is_dead()
                })
                .unwrap()
        })
        .min()
        .unwrap()
}

#[tokio::test]
async fn a_lossy_link_drops_a_whole_frame_and_everything_after_it_as_its_seed_says() {
    let expected: Vec<usize> = (1..=6).map(|seed| first_lost(seed, 0)).collect();
    assert!(
        expected.iter().any(|&k| k != expected[0]),
        "the seed decides: {expected:?}"
    );
    // Seeds under which some frames pass first, so the test sees both sides of the loss.
    for seed in (1..).filter(|&s| first_lost(s, 0) >= 2).take(2) {
        let k = first_lost(seed, 0);
        let link = shaped(echo().await, Dist::FixedMs(0.0), 0.2, seed);
        let mut s = connect(&link).await;
        let frame = |i: usize| format!("${}\r\n{i}\r\n", i.to_string().len());
        // Sent one at a time, each echoed before the next: the first k come back whole.
        for i in 0..k {
            let f = frame(i);
            s.write_all(f.as_bytes()).await.unwrap();
            assert_eq!(read_n(&mut s, f.len()).await, f.as_bytes());
        }
        // Frame k is lost one way or the other, and the connection is dead that way: later
        // frames never arrive either.
        for i in k..k + 5 {
            s.write_all(frame(i).as_bytes()).await.unwrap();
        }
        nothing_arrives(&mut s).await;
        // A new connection on the link is shaped anew and passes again.
        let mut again = connect(&link).await;
        if first_lost(seed, 1) > 0 {
            again.write_all(b"+OK\r\n").await.unwrap();
            assert_eq!(read_n(&mut again, 5).await, b"+OK\r\n");
        }
    }
}

/// A server that sends `early`, waits for one byte from its peer, sends `late` and closes.
async fn early_then_late_then_close() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                s.write_all(b"early").await.unwrap();
                let mut go = [0u8; 1];
                s.read_exact(&mut go).await.unwrap();
                s.write_all(b"late").await.unwrap();
                // Dropped here: the server's end closes right after `late`.
            });
        }
    });
    addr
}

/// Reads what arrives until the connection ends (within a generous bound).
async fn read_to_end(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
        .await
        .expect("the connection ends")
        .unwrap();
    got
}

#[tokio::test]
async fn a_replication_like_link_loses_what_its_delay_still_held_when_the_sender_closed() {
    for lose in [true, false] {
        let link = Link::start(&Handle::current(), early_then_late_then_close().await).unwrap();
        link.control()
            .set_delay(Direction::FromTarget, Duration::from_millis(150));
        if lose {
            link.control().lose_delayed_on_target_close();
        }
        let mut s = connect(&link).await;
        // Due before the sender closed: delivered either way.
        assert_eq!(read_n(&mut s, 5).await, b"early");
        s.write_all(b"g").await.unwrap();
        // `late` was still delayed when the sender closed right after it.
        let rest = read_to_end(&mut s).await;
        if lose {
            assert_eq!(rest, b"", "the delayed bytes died with their sender");
        } else {
            assert_eq!(rest, b"late", "a plain delayed link delivers what was sent");
        }
    }
}

/// `words` as a RESP array of bulk strings, as clients send commands.
fn resp(words: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", words.len()).into_bytes();
    for w in words {
        out.extend_from_slice(format!("${}\r\n{w}\r\n", w.len()).as_bytes());
    }
    out
}

/// Sends `bytes` and reads them back from the echo server, unchanged.
async fn round_trip(s: &mut TcpStream, bytes: &[u8]) {
    s.write_all(bytes).await.unwrap();
    assert_eq!(read_n(s, bytes.len()).await, bytes);
}

/// A tap fires on its command and key only, once; the reply to that command waits for the
/// gate; nothing is changed on the way.
async fn tap_fires_on_its_frame_and_holds_the_reply(link: Link) {
    let mut s = connect(&link).await;
    let mut hit = link.control().arm_tap("get", "k");
    assert!(link.control().tap_armed());
    round_trip(&mut s, &resp(&["GET", "other"])).await;
    round_trip(&mut s, &resp(&["SET", "k", "v"])).await;
    round_trip(&mut s, &resp(&["EVALSHA", "abc", "1", "j", "k"])).await;
    assert!(
        hit.try_recv().is_err(),
        "another key or command fired the tap"
    );
    let get = resp(&["GET", "k"]);
    let before = Instant::now();
    s.write_all(&get).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), &mut hit)
        .await
        .expect("the tap fires")
        .expect("a hit");
    assert_eq!((got.command.as_str(), got.key.as_str()), ("GET", "k"));
    assert!(got.at >= before && got.at <= Instant::now());
    assert!(!link.control().tap_armed(), "one hit per arming");
    nothing_arrives(&mut s).await;
    got.gate.open();
    assert_eq!(read_n(&mut s, get.len()).await, get, "held, then unchanged");
    // Disarmed: the same command passes untouched.
    round_trip(&mut s, &get).await;
}

#[tokio::test]
async fn a_tap_fires_on_the_matching_command_only_and_holds_its_reply_until_the_gate_opens() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    tap_fires_on_its_frame_and_holds_the_reply(link).await;
}

#[tokio::test]
async fn a_tap_works_on_a_shaped_link_too() {
    let link = shaped(echo().await, Dist::FixedMs(1.0), 0.0, 3);
    tap_fires_on_its_frame_and_holds_the_reply(link).await;
}

#[tokio::test]
async fn a_tap_finds_its_frame_among_pipelined_ones_and_an_unwanted_hit_holds_nothing() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    let mut s = connect(&link).await;
    let hit = link.control().arm_tap("SET", "k");
    let burst = [
        resp(&["GET", "k"]),
        resp(&["SET", "k", "v"]),
        resp(&["DEL", "k"]),
    ]
    .concat();
    s.write_all(&burst).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), hit)
        .await
        .expect("the tap fires")
        .unwrap();
    assert_eq!(got.command, "SET");
    drop(got); // dropping the hit opens its gate
    assert_eq!(read_n(&mut s, burst.len()).await, burst);
    // An arming whose owner went away: the hit is refused and nothing is held.
    drop(link.control().arm_tap("GET", "k"));
    round_trip(&mut s, &resp(&["GET", "k"])).await;
    link.control().arm_tap("GET", "k");
    link.control().disarm_tap();
    assert!(!link.control().tap_armed());
    round_trip(&mut s, &resp(&["GET", "k"])).await;
}

#[tokio::test]
async fn two_armings_fire_once_each_and_the_reply_waits_for_both_gates() {
    let link = Link::start(&Handle::current(), echo().await).unwrap();
    let mut s = connect(&link).await;
    let (a, b) = (
        link.control().arm_tap("SET", "k"),
        link.control().arm_tap("set", "k"),
    );
    let set = resp(&["SET", "k", "v"]);
    s.write_all(&set).await.unwrap();
    let within = Duration::from_secs(10);
    let a = tokio::time::timeout(within, a).await.unwrap().unwrap();
    let b = tokio::time::timeout(within, b).await.unwrap().unwrap();
    assert!(!link.control().tap_armed());
    a.gate.open();
    nothing_arrives(&mut s).await;
    b.gate.open();
    assert_eq!(read_n(&mut s, set.len()).await, set);
}
