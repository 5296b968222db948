//! `after.forwarded`: a fault placed right after the fault proxy forwards a client's command,
//! with the server's reply held until the fault is in, on the simulator and on real
//! `redis-server` processes; a servers-by-URL run refuses it; a command never forwarded makes
//! the run inconclusive.
//!
//! The processes tests need Debian's redis-server, the containers test a Docker engine and
//! the image `LOCKSIM_REDIS_IMAGE` names (default here: `locksim/redis:local`; nothing is
//! pulled); with `CI` set their absence is a failure, otherwise they print SKIPPED and pass.

mod common;
use common::redis_available;
use locksim::checker::{Effect, Event, Injected, Record};
use locksim::play::{play_processes, play_sim};
use locksim::scenario::{Condition, Scenario};

/// The image the containers test runs: `LOCKSIM_REDIS_IMAGE`, or the locally built one.
fn test_image() -> String {
    std::env::var(live::containers::IMAGE_ENV)
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "locksim/redis:local".to_string())
}

/// Whether the engine and the image are here; in CI their absence fails the test.
async fn docker_ready() -> bool {
    let check = match live::containers::engine_available().await {
        Ok(()) => live::containers::image_available(&test_image()).await,
        Err(e) => Err(e),
    };
    match check {
        Ok(()) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI must run the containers tests, but: {}", live::chain(&e))
        }
        Err(e) => {
            eprintln!("SKIPPED (not in CI): {}", live::chain(&e));
            false
        }
    }
}

const FILE: &str = "pause-after-acquire-forwarded.json";

/// Where in `records` the first event `f` accepts is, and its time.
fn find(records: &[Record], f: impl Fn(&Event) -> bool) -> Option<(usize, u64)> {
    records
        .iter()
        .position(|r| f(&r.event))
        .map(|i| (i, records[i].t_us))
}

/// The placement is exact: A's acquiring `SET` was seen forwarded, the pause came after it,
/// and A's reply to that `SET` came after the pause — after A ran again. Returns the times
/// (µs) of the forward, the fault and the reply.
fn assert_placed_exactly(records: &[Record]) -> (u64, u64, u64) {
    let text = || {
        records
            .iter()
            .map(|r| format!("{} {}", r.t_us, serde_json::to_string(&r.event).unwrap()))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (sent, _) = find(records, |e| {
        matches!(e, Event::CommandSent { client, command, .. } if client == "A" && command.as_text().starts_with("SET file:42"))
    })
    .unwrap_or_else(|| panic!("A never sent its SET:\n{}", text()));
    let Event::CommandSent { request, .. } = &records[sent].event else {
        unreachable!()
    };
    let request = *request;
    let (fwd, fwd_t) = find(records, |e| {
        matches!(e, Event::Observed(Effect::Forwarded { client, command, key, .. })
            if client == "A" && command.eq_ignore_ascii_case("SET") && key == "file:42")
    })
    .unwrap_or_else(|| panic!("no Forwarded observation:\n{}", text()));
    let (fault, fault_t) = find(
        records,
        |e| matches!(e, Event::Fault(Injected::PauseClient { client, .. }) if client == "A"),
    )
    .unwrap_or_else(|| panic!("the pause was never injected:\n{}", text()));
    let (resumed, _) = find(
        records,
        |e| matches!(e, Event::Observed(Effect::ClientResumed { client }) if client == "A"),
    )
    .unwrap_or_else(|| panic!("A never ran again:\n{}", text()));
    let (reply, reply_t) = find(records, |e| {
        matches!(e, Event::ReplyReceived { client, request: r, .. } if client == "A" && *r == request)
    })
    .unwrap_or_else(|| panic!("A's SET was never answered:\n{}", text()));
    assert!(
        sent < fwd && fwd < fault && fault < resumed && resumed < reply,
        "sent {sent}, forwarded {fwd}, paused {fault}, resumed {resumed}, reply {reply}:\n{}",
        text()
    );
    assert!(fwd_t <= fault_t && fault_t <= reply_t);
    (fwd_t, fault_t, reply_t)
}

#[test]
fn on_the_simulator_the_pause_lands_at_the_commands_arrival() {
    let s = common::load(FILE);
    let played = play_sim(&s, None);
    assert!(played.matches_expect(), "{}", played.verdict.summary());
    let (fwd, fault, reply) = assert_placed_exactly(&played.records);
    assert_eq!(fwd, fault, "the simulator acts at the very event");
    assert!(
        reply >= fault + 2_000_000,
        "the reply waited out the 2 s pause"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_processes_the_reply_to_the_forwarded_set_reaches_a_only_after_its_pause() {
    if !redis_available() {
        return;
    }
    let s = common::load(FILE);
    let (played, _) = play_processes(&s, None).await.expect("played");
    assert!(
        played.matches_expect(),
        "{:?}\n{}",
        played.mismatches,
        played.verdict.summary()
    );
    let (fwd, fault, reply) = assert_placed_exactly(&played.records);
    // Held by the gate until the pause was in, then by the pause itself.
    assert!(
        reply >= fault + 2_000_000,
        "fwd {fwd} fault {fault} reply {reply}"
    );
    eprintln!(
        "forwarded at {fwd} µs, pause injected {} µs later, reply {} ms after the forward",
        fault - fwd,
        (reply - fwd) / 1000
    );
}

/// The file with A's forwarded command replaced by one A never sends.
fn never_forwarded() -> Scenario {
    let mut s = common::load(FILE);
    s.duration_ms = 1500;
    let after = s.faults[0].after.as_mut().unwrap();
    after.timeout_ms = 500;
    if let Condition::Forwarded(f) = &mut after.condition {
        f.command = "GET".into();
    }
    s
}

fn inconclusive_for_the_get(played: &locksim::play::Played) {
    assert!(
        !played.verdict.is_conclusive(),
        "{}",
        played.verdict.summary()
    );
    assert!(
        played.verdict.inconclusive.iter().any(|r| r.contains(
            "faults[0] (pause client A for 2000 ms) waited for A's GET of file:42 forwarded, which was not seen within 500 ms"
        )),
        "{:?}",
        played.verdict.inconclusive
    );
    assert!(!played
        .records
        .iter()
        .any(|r| matches!(r.event, Event::Fault(_))));
}

#[test]
fn a_command_never_forwarded_is_inconclusive_on_the_simulator() {
    inconclusive_for_the_get(&play_sim(&never_forwarded(), None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_never_forwarded_is_inconclusive_on_processes() {
    if !redis_available() {
        return;
    }
    let (played, _) = play_processes(&never_forwarded(), None)
        .await
        .expect("played");
    inconclusive_for_the_get(&played);
}

#[test]
fn servers_given_by_url_refuse_a_forwarded_condition() {
    let s = common::load(FILE);
    let url = live::UrlProvider::new(vec!["redis://127.0.0.1:1".into()]);
    let refused = live::driver::check_support(&s, &url).unwrap_err();
    let text = live::chain(&refused);
    assert!(
        text.contains("faults[0].after.forwarded")
            && text.contains("servers given by URL are not behind it"),
        "{text}"
    );
}

/// The file with no fault and B starting right after A's acquiring `SET` is forwarded.
fn b_starts_after_as_set() -> Scenario {
    let mut s = common::load(FILE);
    let after = s.faults.remove(0).after;
    s.clients[1].start_ms = 0;
    s.clients[1].after = after;
    s.validate().expect("still valid");
    s
}

/// B began acquiring after A's `SET` was forwarded and before A had its reply.
fn b_started_between(records: &[Record]) {
    let (fwd, _) = find(
        records,
        |e| matches!(e, Event::Observed(Effect::Forwarded { client, .. }) if client == "A"),
    )
    .expect("forwarded");
    let (b, _) = find(
        records,
        |e| matches!(e, Event::AcquireStarted { client } if client == "B"),
    )
    .expect("B started");
    let (reply, _) = find(
        records,
        |e| matches!(e, Event::ReplyReceived { client, request: 1, .. } if client == "A"),
    )
    .expect("A's reply");
    assert!(
        fwd < b && b < reply,
        "forwarded {fwd}, B {b}, A's reply {reply}"
    );
}

#[test]
fn a_client_start_waits_for_a_forwarded_command_on_the_simulator() {
    b_started_between(&play_sim(&b_starts_after_as_set(), None).records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_start_waits_for_a_forwarded_command_on_processes() {
    if !redis_available() {
        return;
    }
    let (played, _) = play_processes(&b_starts_after_as_set(), None)
        .await
        .expect("played");
    b_started_between(&played.records);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_containers_the_reply_to_the_forwarded_set_reaches_a_only_after_its_pause() {
    if !docker_ready().await {
        return;
    }
    let s = common::load(FILE);
    let c = live::containers::Containers::start_for_image(&s, &test_image())
        .await
        .unwrap_or_else(|e| panic!("containers did not start: {}", live::chain(&e)));
    let provider: std::sync::Arc<dyn live::Provider> = std::sync::Arc::new(c);
    let (played, _) = locksim::play::play_live(&s, provider, None)
        .await
        .expect("played");
    assert!(
        played.matches_expect(),
        "{:?}\n{}",
        played.mismatches,
        played.verdict.summary()
    );
    let (_, fault, reply) = assert_placed_exactly(&played.records);
    assert!(reply >= fault + 2_000_000);
}
