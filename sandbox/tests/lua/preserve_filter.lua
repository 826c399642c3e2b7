-- A filter whose global state must survive a restart.
require "circular_buffer"
require "hyperloglog"
require "bloom_filter"
require "cuckoo_filter"
require "sax"
require "string"

_PRESERVATION_VERSION = 2

count = 0
last_payload = ""
ratio = 0.1
flags = {on = true, off = false}
nested = {list = {1, 2, 3}, map = {["key with spaces"] = "v", ["quote\"d"] = "a\nb\0c"}}
nested.self = nested            -- cycle
alias = nested.list             -- shared reference
special = {nan = 0/0, inf = 1/0, ninf = -1/0, big = 2^53, neg = -1.25e-7}
per_minute = circular_buffer.new(3, 1, 60)
per_minute:set_header(1, "Messages", "count", "sum")
payloads = hyperloglog.new()    -- distinct payloads
seen = bloom_filter.new(100, 0.01)
recent = cuckoo_filter.new(64)
shape = sax.window.new(4, 2, 4)   -- the SAX word of the last four counts
local not_preserved = 42
function helper() return 1 end

function process_message()
    count = count + 1
    last_payload = read_message("Payload")
    per_minute:add(read_message("Timestamp"), 1, 1)
    payloads:add(last_payload)
    seen:add(last_payload)
    recent:add(last_payload)
    shape:add(count)
    nested.list[#nested.list + 1] = count
    return 0
end
