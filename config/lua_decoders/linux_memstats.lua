--[[
linux_memstats.lua: turns the contents of /proc/meminfo, as a FilePollingInput reads it, into
one message of Type "stats.memstats" -- the message Heka's decoder of the same name makes, so
filters and dashboards written for Heka keep working.

    [meminfo]
    type = "FilePollingInput"
    ticker_interval = 1
    file_path = "/proc/meminfo"
    decoder = "memstats_decoder"

    [memstats_decoder]
    type = "SandboxDecoder"
    filename = "/usr/share/hekate/lua_decoders/linux_memstats.lua"

    # [memstats_decoder.config]
    # payload_keep = true   # keep the file's text as the Payload (default: no Payload)

Each line "Name:   value [unit]" becomes a DOUBLE field named as the line (MemTotal, MemFree,
Active(anon), HugePages_Total, ...) with the unit as its representation: "kB" for the sizes,
"" for the counts (HugePages_Total, _Free, _Rsvd, _Surp). The values are the file's, in kB,
not converted. From "MemTotal:       16314004 kB\nHugePages_Total:       0\n" it makes:

    Type     "stats.memstats"
    Payload  none (the text with payload_keep)
    Fields   MemTotal = 16314004 (DOUBLE, representation "kB")
             HugePages_Total = 0 (DOUBLE, representation "")
             FilePath = "/proc/meminfo" (STRING, from the input)

The set of lines depends on the kernel; all of them are kept. Text without a single such line
fails the record.
--]]

local keep_payload = read_config("payload_keep")

function process_message()
    local text = read_message("Payload")
    local fields = {}
    local found = false
    for line in text:gmatch("[^\n]+") do
        local name, value, unit = line:match("^([^:]+):%s*(%d+)%s*(%S*)%s*$")
        if name then
            fields[name] = {value = tonumber(value), representation = unit}
            found = true
        end
    end
    if not found then
        return -1, "not the contents of /proc/meminfo"
    end
    fields.FilePath = read_message("Fields[FilePath]")
    local payload
    if keep_payload then
        payload = text
    end
    inject_message({Type = "stats.memstats", Payload = payload, Fields = fields})
    return 0
end
