/*
 * statsd workload, etsy statsd side: statsd over UDP -> aggregate every second -> graphite
 * plaintext over TCP, the equivalent of bench/configs/statsd.toml (StatsdInput ->
 * StatAccumInput -> CarbonOutput). Rendered by bench/src/harness/statsd.rs, which replaces
 * @PORT@, @MGMT_PORT@ and @SINK_PORT@.
 *
 * Counters arrive as `stats_counts.<name> <count per flush>`: the checking sink sums those and
 * compares with what the generator sent. deleteIdleStats stops zeros once the load ends.
 */
{
  port: @PORT@,
  address: "127.0.0.1",
  mgmt_port: @MGMT_PORT@,
  mgmt_address: "127.0.0.1",
  graphiteHost: "127.0.0.1",
  graphitePort: @SINK_PORT@,
  flushInterval: 1000,
  deleteIdleStats: true,
  title: false,
  backends: ["./backends/graphite"]
}
