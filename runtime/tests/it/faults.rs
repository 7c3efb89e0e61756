//! Faults: traps, runaway loops and guest errors cost one request, never the host.

use crate::contracts::kitchen_host;
use crate::support::*;

#[test]
fn a_trapping_actor_gets_500_and_the_host_keeps_serving() {
    let (host, port) = kitchen_host(&[]);
    let r = get(port, "/trap");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("trapped"), "{}", r.text());
    assert_eq!(get(port, "/extras").status, 200);
    host.wait_log("discarding instance");
}

#[test]
fn an_endless_loop_is_interrupted_and_the_host_keeps_serving() {
    let (_host, port) = kitchen_host(&["--call-deadline-ms", "300"]);
    // A second request while the loop spins: the shard must still serve it.
    let spinning = std::thread::spawn(move || get(port, "/loop"));
    std::thread::sleep(std::time::Duration::from_millis(50));
    assert_eq!(get(port, "/extras").status, 200);
    let r = spinning.join().unwrap();
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("exceeded its deadline of 300ms"),
        "{}",
        r.text()
    );
    assert_eq!(get(port, "/extras").status, 200);
}

#[test]
fn an_endless_loop_on_the_constrained_engine_runs_out_of_time_or_fuel() {
    let (_host, port) = kitchen_host(&["--engine", "constrained", "--call-deadline-ms", "300"]);
    let r = get(port, "/loop");
    assert_eq!(r.status, 500);
    let t = r.text();
    assert!(
        t.contains("exceeded its deadline") || t.contains("exhausted its fuel"),
        "{t}"
    );
    assert_eq!(get(port, "/extras").status, 200);
}

#[test]
fn a_guest_error_is_a_500_naming_it() {
    let (_host, port) = kitchen_host(&[]);
    let r = get(port, "/fail");
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("kitchen was asked to fail"),
        "{}",
        r.text()
    );
    assert_eq!(get(port, "/nowhere").status, 404);
}

#[test]
fn sigterm_drains_in_flight_requests() {
    let (host, port) = kitchen_host(&["--call-deadline-ms", "1500"]);
    let slow = std::thread::spawn(move || get(port, "/loop"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, log) = host.terminate();
    let r = slow.join().unwrap();
    assert_eq!(
        r.status, 500,
        "the in-flight request was answered, not dropped"
    );
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("draining in-flight requests") && log.contains("host stopped"),
        "{log}"
    );
}
