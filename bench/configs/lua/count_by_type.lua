-- sandbox workload (bench/configs/sandbox-filter.toml): counts every message into a circular
-- buffer, one column per kind of message the load generator sends, one row per second, and
-- injects the buffer as a `cbuf` payload every ticker interval (as Heka's dashboard filters do).

require "circular_buffer"

local rows = read_config("rows") or 300
local seconds_per_row = read_config("seconds_per_row") or 1

cb = circular_buffer.new(rows, 5, seconds_per_row)
local NGINX = cb:set_header(1, "nginx")
local APP = cb:set_header(2, "app")
local SYSLOG = cb:set_header(3, "syslog")
local AUDIT = cb:set_header(4, "audit")
local OTHER = cb:set_header(5, "other")

local columns = {
    ["nginx.access"] = NGINX,
    ["app.log"] = APP,
    syslog = SYSLOG,
    audit = AUDIT,
}

function process_message()
    local col = columns[read_message("Type")] or OTHER
    cb:add(read_message("Timestamp"), col, 1)
    return 0
end

function timer_event(ns)
    inject_payload("cbuf", "Messages per type", cb)
end
