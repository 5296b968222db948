use super::cut::{plan, Cut};
use super::engine::{split_image, tar_of_one};

#[test]
fn splits_image_names() {
    assert_eq!(split_image("redis:7"), ("redis".into(), "7".into()));
    assert_eq!(
        split_image("locksim/redis:local"),
        ("locksim/redis".into(), "local".into())
    );
    assert_eq!(
        split_image("host:5000/redis"),
        ("host:5000/redis".into(), "latest".into())
    );
}

#[test]
fn a_tar_of_one_file_has_a_valid_header_and_padded_content() {
    let tar = tar_of_one("sentinel.conf", b"port 26379\n");
    assert_eq!(tar.len(), 512 + 512 + 1024);
    assert_eq!(&tar[..13], b"sentinel.conf");
    assert_eq!(&tar[124..136], b"00000000013\0");
    assert_eq!(&tar[257..263], b"ustar\0");
    let stored = std::str::from_utf8(&tar[148..154]).unwrap();
    let mut header = tar[..512].to_vec();
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    assert_eq!(u32::from_str_radix(stored, 8).unwrap(), sum);
    assert_eq!(&tar[512..523], b"port 26379\n");
}

fn names(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|x| x.to_string()).collect()
}

#[test]
fn a_partition_gates_clients_and_isolates_the_smaller_side_of_nodes() {
    let all = names(&[
        "primary",
        "replica-1",
        "sentinel-1",
        "sentinel-2",
        "sentinel-3",
    ]);
    // Clients off a node: the relay's gate.
    assert_eq!(
        plan(&all, 2, &names(&["A"]), &names(&["primary"])).unwrap(),
        Cut {
            gate: vec![("A".into(), 0)],
            isolate: vec![]
        }
    );
    // Per client: B alone is cut off both nodes, one relay each.
    assert_eq!(
        plan(&all, 2, &names(&["primary", "replica-1"]), &names(&["B"]))
            .unwrap()
            .gate,
        vec![("B".to_string(), 0), ("B".to_string(), 1)]
    );
    // A primary off its replica and Sentinels: the primary leaves the mesh.
    assert_eq!(
        plan(
            &all,
            2,
            &names(&["primary"]),
            &names(&["replica-1", "sentinel-1", "sentinel-2", "sentinel-3"])
        )
        .unwrap(),
        Cut {
            gate: vec![],
            isolate: names(&["primary"])
        }
    );
    assert!(plan(&all, 2, &names(&["resource"]), &names(&["primary"])).is_err());
    assert!(plan(&all, 2, &names(&["A"]), &names(&["B"])).is_err());
}
