-- Requests per minute and the worst latency, as cbuf and cbufd payloads.
require "circular_buffer"

requests = circular_buffer.new(3, 2, 60, true)
requests:set_header(1, "Requests", "count", "sum")
requests:set_header(2, "Max Latency!", "ms", "max")

function process_message()
    local ts = read_message("Timestamp")
    requests:add(ts, 1, 1)
    requests:set(ts, 2, read_message("Fields[latency]"))
    return 0
end

function timer_event(ns)
    inject_payload("cbuf", "Requests", requests)
    requests:format("cbufd")
    inject_payload("cbufd", "Requests", requests)
    requests:format("cbuf")
end
