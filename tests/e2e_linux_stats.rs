//! The Linux stats example (`config/examples/linux-stats.toml`) with the real binary on the real
//! `/proc`: FilePollingInputs read /proc/loadavg, /proc/meminfo, /proc/diskstats and
//! /proc/net/dev every second and the shipped decoders (`config/lua_decoders/`) turn them into
//! Heka's `stats.*` messages, whose values agree with what the test reads from /proc itself.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use hekate_model::message::{Field, Message, ValueType};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn field<'m>(m: &'m Message, name: &str) -> &'m Field {
    m.find_first_field(name)
        .unwrap_or_else(|| panic!("no field {name} in {m:?}"))
}

fn double(m: &Message, name: &str) -> f64 {
    let f = field(m, name);
    assert_eq!(
        f.value_type,
        Some(ValueType::Double as i32),
        "{name}: {f:?}"
    );
    f.value_double[0]
}

fn string(m: &Message, name: &str) -> String {
    let f = field(m, name);
    assert_eq!(
        f.value_type.unwrap_or(0),
        ValueType::String as i32,
        "{name}: {f:?}"
    );
    f.value_string[0].clone()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Device name → its first eleven counters, from /proc/diskstats.
fn diskstats() -> BTreeMap<String, Vec<f64>> {
    read("/proc/diskstats")
        .lines()
        .filter_map(|line| {
            let words: Vec<_> = line.split_whitespace().collect();
            let counters = words.get(3..14)?.iter().map(|w| w.parse().unwrap());
            Some((words[2].to_string(), counters.collect()))
        })
        .collect()
}

/// Interface → receive_bytes, from /proc/net/dev.
fn net_dev_receive_bytes() -> BTreeMap<String, f64> {
    read("/proc/net/dev")
        .lines()
        .skip(2)
        .map(|line| {
            let (name, counters) = line.split_once(':').unwrap();
            let bytes = counters.split_whitespace().next().unwrap().parse().unwrap();
            (name.trim().to_string(), bytes)
        })
        .collect()
}

fn of_type<'a>(msgs: &'a [Message], ty: &str) -> Vec<&'a Message> {
    msgs.iter()
        .filter(|m| m.r#type.as_deref() == Some(ty))
        .collect()
}

fn loadavg_words() -> Vec<String> {
    read("/proc/loadavg")
        .split(|c: char| c.is_whitespace() || c == '/')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

#[test]
fn the_linux_stats_example_turns_proc_files_into_heka_stats_messages() {
    let dir = temp_dir("linux-stats");
    let example = read(
        root()
            .join("config/examples/linux-stats.toml")
            .to_str()
            .unwrap(),
    );
    let config = example
        .replace("/var/lib/hekate", &dir.join("base").display().to_string())
        .replace(
            "/usr/share/hekate/lua_decoders",
            &root().join("config/lua_decoders").display().to_string(),
        );
    let out = dir.join("base").join("linux-stats.hekad");
    let load_before = loadavg_words();
    let disks_before = diskstats();
    let mut hekate = Hekate::start(&dir, &config, &[]);
    let types = [
        "stats.loadavg",
        "stats.memstats",
        "stats.diskstats",
        "stats.netdev",
    ];
    assert!(
        wait_for(Duration::from_secs(15), || {
            let msgs = read_stream(&out);
            types.iter().all(|t| !of_type(&msgs, t).is_empty())
        }),
        "{}",
        hekate.stderr()
    );
    // What /proc says now, after the messages were made.
    let load_after = loadavg_words();
    let meminfo = read("/proc/meminfo");
    let disks_after = diskstats();
    let net_after = net_dev_receive_bytes();
    assert!(hekate.terminate().success(), "{}", hekate.stderr());
    assert!(
        !hekate.stderr().contains("Failed parsing"),
        "{}",
        hekate.stderr()
    );
    let msgs = read_stream(&out);
    for m in &msgs {
        assert_eq!(m.payload, None, "Heka's decoders keep no Payload: {m:?}");
    }

    // /proc/loadavg: one message per tick; the averages between the readings before and after.
    for m in of_type(&msgs, "stats.loadavg") {
        assert_eq!(m.fields.len(), 5, "{m:?}");
        assert_eq!(string(m, "FilePath"), "/proc/loadavg");
        let running = double(m, "NumProcesses");
        let total: f64 = load_after[4].parse().unwrap();
        assert!(running >= 1.0 && running <= total, "{running} of {total}");
        for (i, name) in ["1MinAvg", "5MinAvg", "15MinAvg"].into_iter().enumerate() {
            let v = double(m, name);
            let a: f64 = load_before[i].parse().unwrap();
            let b: f64 = load_after[i].parse().unwrap();
            assert!(
                v >= a.min(b) - 1.0 && v <= a.max(b) + 1.0,
                "{name} {v}, /proc/loadavg {a} then {b}"
            );
        }
    }

    // /proc/meminfo: a field per line, in kB, MemTotal exactly the kernel's.
    let mem = of_type(&msgs, "stats.memstats")[0];
    assert_eq!(string(mem, "FilePath"), "/proc/meminfo");
    let lines: Vec<_> = meminfo.lines().collect();
    assert_eq!(mem.fields.len(), lines.len() + 1, "{mem:?}");
    for line in lines {
        let (name, rest) = line.split_once(':').unwrap();
        let f = field(mem, name);
        assert_eq!(f.value_type, Some(ValueType::Double as i32), "{f:?}");
        let unit = rest.split_whitespace().nth(1).unwrap_or("");
        assert_eq!(f.representation.as_deref().unwrap_or(""), unit, "{f:?}");
        if name == "MemTotal" {
            let total: f64 = rest.split_whitespace().next().unwrap().parse().unwrap();
            assert_eq!(double(mem, "MemTotal"), total);
        }
    }

    // /proc/diskstats: a message per device, counters that never exceed the kernel's later ones.
    let disk_msgs = of_type(&msgs, "stats.diskstats");
    let decoded: BTreeSet<String> = disk_msgs.iter().map(|m| string(m, "Device")).collect();
    for device in disks_before.keys().filter(|d| disks_after.contains_key(*d)) {
        assert!(decoded.contains(device), "{device} not in {decoded:?}");
    }
    let names = [
        "ReadsCompleted",
        "ReadsMerged",
        "SectorsRead",
        "TimeReading",
        "WritesCompleted",
        "WritesMerged",
        "SectorsWritten",
        "TimeWriting",
        "NumIOInProgress",
        "TimeDoingIO",
        "WeightedTimeDoingIO",
    ];
    for m in &disk_msgs {
        assert_eq!(m.fields.len(), 14, "{m:?}");
        assert_eq!(string(m, "FilePath"), "/proc/diskstats");
        assert_eq!(double(m, "TickerInterval"), 1.0);
        let device = string(m, "Device");
        for (i, name) in names.iter().enumerate() {
            let v = double(m, name);
            assert!(v >= 0.0 && v.fract() == 0.0, "{device} {name} {v}");
            // NumIOInProgress goes up and down; the others only count up.
            if let Some(later) = disks_after.get(&device)
                && *name != "NumIOInProgress"
            {
                assert!(v <= later[i], "{device} {name} {v} > {}", later[i]);
            }
        }
    }

    // /proc/net/dev: a message per interface, lo among them.
    let net_msgs = of_type(&msgs, "stats.netdev");
    let lo = net_msgs
        .iter()
        .find(|m| string(m, "netdevice") == "lo")
        .expect("an interface lo");
    assert_eq!(string(lo, "FilePath"), "/proc/net/dev");
    for m in &net_msgs {
        assert_eq!(m.fields.len(), 18, "{m:?}");
        let interface = string(m, "netdevice");
        for side in ["receive", "transmit"] {
            for counter in ["bytes", "packets", "errs", "drop", "fifo", "compressed"] {
                double(m, &format!("{side}_{counter}"));
            }
        }
        for name in [
            "receive_frame",
            "receive_multicast",
            "transmit_colls",
            "transmit_carrier",
        ] {
            double(m, name);
        }
        if let Some(later) = net_after.get(&interface) {
            assert!(double(m, "receive_bytes") <= *later, "{interface}");
        }
    }

    // And as a user reads the archive, the example's first comment says: `hekate cat`.
    let cat = Command::new(env!("CARGO_BIN_EXE_hekate"))
        .args([
            "cat",
            "--format",
            "json",
            "--match",
            "Type == 'stats.loadavg'",
        ])
        .arg(Path::new(&out))
        .output()
        .unwrap();
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    let first: serde_json::Value = serde_json::from_str(
        String::from_utf8(cat.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(first["Type"], "stats.loadavg");
}
