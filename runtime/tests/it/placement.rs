//! Placement of actors onto shards.

use wascc_runtime::placement::Placement;
use wascc_scheduler::ShardId;

#[test]
fn limited_actors_spread_over_the_least_loaded_shards() {
    let p = Placement::place(&[Some(1), Some(1), None, Some(2), Some(1), Some(9)], 3);
    assert_eq!(p.shards_of(0), vec![ShardId(0)]);
    assert_eq!(p.shards_of(1), vec![ShardId(1)]);
    assert_eq!(p.shards_of(2).len(), 3, "unlimited runs everywhere");
    assert_eq!(p.shards_of(3), vec![ShardId(0), ShardId(2)]);
    assert_eq!(p.shards_of(4), vec![ShardId(1)]);
    assert_eq!(p.shards_of(5).len(), 3, "more than there are means all");
    assert!(p.runs_on(2, ShardId(2)) && !p.runs_on(0, ShardId(1)));
    assert!(!p.runs_on(99, ShardId(0)), "unknown actors run nowhere");
    assert_eq!(
        (0..4).map(|t| p.pick(3, t)).collect::<Vec<_>>(),
        vec![ShardId(0), ShardId(2), ShardId(0), ShardId(2)]
    );
}

#[test]
fn one_shard_holds_everything() {
    let p = Placement::place(&[Some(1), None], 1);
    assert!(p.runs_on(0, ShardId(0)) && p.runs_on(1, ShardId(0)));
}

#[test]
fn shards_given_back_are_placed_on_again() {
    use wascc_runtime::placement::Placer;
    let mut p = Placer::new(2);
    let a = p.place(Some(1));
    let b = p.place(Some(1));
    assert_eq!((a.first(), b.first()), (ShardId(0), ShardId(1)));
    p.release(&a);
    let c = p.place(Some(1));
    assert_eq!(c.first(), ShardId(0), "the freed shard is the least loaded");
    assert!(
        p.place(None).contains(ShardId(1)),
        "unlimited runs everywhere"
    );
    assert_eq!(
        p.place(Some(1)).first(),
        ShardId(0),
        "ties go to the lowest index"
    );
}
