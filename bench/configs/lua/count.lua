-- sandbox workload (bench/configs/sandbox-trivial.toml): the trivial filter of the target
-- (BENCHMARKS.md): read one header of every message, bump a counter. The count goes out as a
-- payload every ticker interval, so the script's work cannot be optimised away.

local count = 0
local last_type = ""

function process_message()
    last_type = read_message("Type")
    count = count + 1
    return 0
end

function timer_event(ns)
    inject_payload("txt", "count", string.format("%d messages, last of type %s", count, last_type))
end
