//! The Linux stats decoders shipped in `config/lua_decoders/` (installed in
//! `/usr/share/hekate/lua_decoders/`), on fixed text: Heka's Types, field names, types and
//! units, and no Payload unless `payload_keep`.

use super::*;
use hekate_model::message::{Field, Message, ValueType};

const LUA_DECODERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/lua_decoders");

/// A SandboxDecoder running the shipped `script`, with `config` as its `[d.config]` lines.
fn shipped(script: &str, config: &str) -> Box<dyn Decoder> {
    let toml = format!(
        "[d]\ntype = \"SandboxDecoder\"\nfilename = \"{LUA_DECODERS}/{script}\"\n[d.config]\n{config}\n"
    );
    let config = hekate_config::Config::from_str(&toml, "t.toml").unwrap();
    let built = std::collections::HashMap::new();
    let ctx = BuildContext::new(&config.global, &built);
    match build(config.plugin("d").unwrap(), &ctx).unwrap() {
        Built::Decoder(d) => d.new_decoder(),
        _ => unreachable!(),
    }
}

/// `text` as FilePollingInput hands it on (its fields `TickerInterval` = 1 and `FilePath`),
/// decoded into messages, or the decode error.
fn decode(d: &mut dyn Decoder, path: &str, text: &str) -> Result<Vec<Message>, String> {
    let mut fields = Vec::new();
    MessageWriter::new(&mut fields)
        .field_int("TickerInterval", 1)
        .field_string("FilePath", path);
    let src = RecordSource {
        input: "stats",
        hostname: "host1",
        message_bytes: false,
        msg_type: Some("heka.file.polling"),
        fields: &fields,
    };
    let mut out = DecodedMessages::default();
    d.decode(text.as_bytes(), &src, &mut out).map_err(|e| e.0)?;
    Ok(out
        .iter()
        .map(|b| Message::decode_bytes(b).unwrap())
        .collect())
}

fn field<'m>(m: &'m Message, name: &str) -> &'m Field {
    m.find_first_field(name)
        .unwrap_or_else(|| panic!("no field {name} in {m:?}"))
}

/// The value of the DOUBLE field `name`, and its representation ("" when none).
fn double(m: &Message, name: &str) -> (f64, String) {
    let f = field(m, name);
    assert_eq!(
        f.value_type,
        Some(ValueType::Double as i32),
        "{name}: {f:?}"
    );
    assert_eq!(f.value_double.len(), 1, "{name}: {f:?}");
    (
        f.value_double[0],
        f.representation.clone().unwrap_or_default(),
    )
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

fn names(m: &Message) -> Vec<&str> {
    let mut names: Vec<_> = m.fields.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    names
}

#[test]
fn loadavg_becomes_one_stats_loadavg_message() {
    let mut d = shipped("linux_loadavg.lua", "");
    let msgs = decode(&mut *d, "/proc/loadavg", "0.43 0.54 0.24 1/171 11297\n").unwrap();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.r#type.as_deref(), Some("stats.loadavg"));
    assert_eq!(m.payload, None);
    assert_eq!(m.logger.as_deref(), Some("stats"));
    assert_eq!(m.hostname.as_deref(), Some("host1"));
    assert_eq!(
        names(m),
        ["15MinAvg", "1MinAvg", "5MinAvg", "FilePath", "NumProcesses"]
    );
    assert_eq!(double(m, "1MinAvg").0, 0.43);
    assert_eq!(double(m, "5MinAvg").0, 0.54);
    assert_eq!(double(m, "15MinAvg").0, 0.24);
    // Heka's NumProcesses is the number before the slash: the runnable ones.
    assert_eq!(double(m, "NumProcesses").0, 1.0);
    assert_eq!(string(m, "FilePath"), "/proc/loadavg");

    let e = decode(&mut *d, "/proc/loadavg", "MemTotal: 1 kB\n").unwrap_err();
    assert!(e.contains("not the contents of /proc/loadavg"), "{e}");

    let mut kept = shipped("linux_loadavg.lua", "payload_keep = true");
    let text = "12.05 3.21 0.44 11/1234 99\n";
    let m = &decode(&mut *kept, "/proc/loadavg", text).unwrap()[0];
    assert_eq!(m.payload.as_deref(), Some(text));
    assert_eq!(double(m, "1MinAvg").0, 12.05);
    assert_eq!(double(m, "NumProcesses").0, 11.0);
}

#[test]
fn meminfo_becomes_one_stats_memstats_message_in_kb() {
    let text = "MemTotal:       16314004 kB\n\
                MemFree:         1228268 kB\n\
                Active(anon):    2339464 kB\n\
                HugePages_Total:       0\n\
                HugePages_Free:        0\n\
                Hugepagesize:       2048 kB\n\
                DirectMap1G:    13631488 kB\n";
    let mut d = shipped("linux_memstats.lua", "");
    let msgs = decode(&mut *d, "/proc/meminfo", text).unwrap();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.r#type.as_deref(), Some("stats.memstats"));
    assert_eq!(m.payload, None);
    assert_eq!(
        names(m),
        [
            "Active(anon)",
            "DirectMap1G",
            "FilePath",
            "HugePages_Free",
            "HugePages_Total",
            "Hugepagesize",
            "MemFree",
            "MemTotal"
        ]
    );
    assert_eq!(double(m, "MemTotal"), (16314004.0, "kB".into()));
    assert_eq!(double(m, "MemFree"), (1228268.0, "kB".into()));
    assert_eq!(double(m, "Active(anon)"), (2339464.0, "kB".into()));
    assert_eq!(double(m, "HugePages_Total"), (0.0, String::new()));
    assert_eq!(double(m, "Hugepagesize"), (2048.0, "kB".into()));
    assert_eq!(double(m, "DirectMap1G"), (13631488.0, "kB".into()));
    assert_eq!(string(m, "FilePath"), "/proc/meminfo");

    assert!(decode(&mut *d, "/proc/meminfo", "nothing here\n").is_err());
    let mut kept = shipped("linux_memstats.lua", "payload_keep = true");
    let m = &decode(&mut *kept, "/proc/meminfo", text).unwrap()[0];
    assert_eq!(m.payload.as_deref(), Some(text));
}

const DISKSTATS: &str = "   8       0 sda 20123 11267 1094968 45148 1278 1278 206504 3348 3 4876 48356 0 0 0 0 7 12\n\
    8       1 sda1 100 0 2000 50 10 0 80 5 0 40 55\n\
    7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

const DISK_FIELDS: [&str; 11] = [
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

#[test]
fn proc_diskstats_becomes_one_stats_diskstats_message_per_device() {
    let mut d = shipped("linux_diskstats.lua", "");
    let msgs = decode(&mut *d, "/proc/diskstats", DISKSTATS).unwrap();
    let devices: Vec<_> = msgs.iter().map(|m| string(m, "Device")).collect();
    assert_eq!(devices, ["sda", "sda1", "loop0"]);
    let sda = &msgs[0];
    assert_eq!(sda.r#type.as_deref(), Some("stats.diskstats"));
    assert_eq!(sda.payload, None);
    // The kernel's first eleven columns, in its order; the discard and flush ones are left out.
    let want = [
        20123.0, 11267.0, 1094968.0, 45148.0, 1278.0, 1278.0, 206504.0, 3348.0, 3.0, 4876.0,
        48356.0,
    ];
    for (name, value) in DISK_FIELDS.iter().zip(want) {
        assert_eq!(double(sda, name).0, value, "{name}");
    }
    assert_eq!(double(sda, "TickerInterval").0, 1.0);
    assert_eq!(string(sda, "FilePath"), "/proc/diskstats");
    assert_eq!(sda.fields.len(), 14, "{:?}", names(sda));
    assert_eq!(double(&msgs[1], "WeightedTimeDoingIO").0, 55.0);
    assert_eq!(double(&msgs[2], "SectorsRead").0, 0.0);

    let mut disks = shipped("linux_diskstats.lua", "device_match = \"^sd%a+$\"");
    let msgs = decode(&mut *disks, "/proc/diskstats", DISKSTATS).unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(string(&msgs[0], "Device"), "sda");

    assert!(decode(&mut *d, "/proc/diskstats", "1 2 3\n").is_err());
}

#[test]
fn a_sys_block_stat_file_becomes_the_message_heka_makes() {
    let text = "   20123    11267  1094968    45148     1278     1278   206504     3348        3     4876    48356        0        0        0        0\n";
    let mut d = shipped("linux_diskstats.lua", "payload_keep = true");
    let msgs = decode(&mut *d, "/sys/block/sda/stat", text).unwrap();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.r#type.as_deref(), Some("stats.diskstats"));
    assert_eq!(m.payload.as_deref(), Some(text));
    let mut want: Vec<&str> = DISK_FIELDS.to_vec();
    want.extend(["FilePath", "TickerInterval"]);
    want.sort();
    assert_eq!(names(m), want);
    assert_eq!(double(m, "SectorsRead").0, 1094968.0);
    assert_eq!(double(m, "NumIOInProgress").0, 3.0);
    assert_eq!(string(m, "FilePath"), "/sys/block/sda/stat");
}

#[test]
fn net_dev_becomes_one_stats_netdev_message_per_interface() {
    let text = "Inter-|   Receive                                                |  Transmit\n \
                face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
                lo:   76139     601    0    0    0     0          0         0    76139     601    0    0    0     0       0          0\n  \
                eth0: 139159830850 118443194    1    2    3     4          5         6 178516842512 107330545    7    8    9    10      11         12\n\
                br-1f2e:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n";
    let mut d = shipped("linux_netdev.lua", "");
    let msgs = decode(&mut *d, "/proc/net/dev", text).unwrap();
    let interfaces: Vec<_> = msgs.iter().map(|m| string(m, "netdevice")).collect();
    assert_eq!(interfaces, ["lo", "eth0", "br-1f2e"]);
    let eth0 = &msgs[1];
    assert_eq!(eth0.r#type.as_deref(), Some("stats.netdev"));
    assert_eq!(eth0.payload, None);
    assert_eq!(string(eth0, "FilePath"), "/proc/net/dev");
    let want = [
        ("receive_bytes", 139159830850.0),
        ("receive_packets", 118443194.0),
        ("receive_errs", 1.0),
        ("receive_drop", 2.0),
        ("receive_fifo", 3.0),
        ("receive_frame", 4.0),
        ("receive_compressed", 5.0),
        ("receive_multicast", 6.0),
        ("transmit_bytes", 178516842512.0),
        ("transmit_packets", 107330545.0),
        ("transmit_errs", 7.0),
        ("transmit_drop", 8.0),
        ("transmit_fifo", 9.0),
        ("transmit_colls", 10.0),
        ("transmit_carrier", 11.0),
        ("transmit_compressed", 12.0),
    ];
    for (name, value) in want {
        assert_eq!(double(eth0, name).0, value, "{name}");
    }
    assert_eq!(eth0.fields.len(), 18, "{:?}", names(eth0));
    assert_eq!(double(&msgs[0], "transmit_bytes").0, 76139.0);

    assert!(decode(&mut *d, "/proc/net/dev", "0.43 0.54 0.24 1/171 11297\n").is_err());
}
