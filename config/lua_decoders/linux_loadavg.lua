--[[
linux_loadavg.lua: turns the contents of /proc/loadavg, as a FilePollingInput reads it, into
one message of Type "stats.loadavg" -- the message Heka's decoder of the same name makes, so
filters and dashboards written for Heka keep working.

    [loadavg]
    type = "FilePollingInput"
    ticker_interval = 1
    file_path = "/proc/loadavg"
    decoder = "loadavg_decoder"

    [loadavg_decoder]
    type = "SandboxDecoder"
    filename = "/usr/share/hekate/lua_decoders/linux_loadavg.lua"

    # [loadavg_decoder.config]
    # payload_keep = true   # keep the file's text as the Payload (default: no Payload)

From "0.43 0.54 0.24 1/171 11297\n" it makes:

    Type     "stats.loadavg"
    Payload  none (the text with payload_keep)
    Fields   1MinAvg = 0.43, 5MinAvg = 0.54, 15MinAvg = 0.24 (DOUBLE)
             NumProcesses = 1 (DOUBLE): as in Heka, the number before the slash, the
                            scheduling entities runnable now (not the 171 that exist)
             FilePath = "/proc/loadavg" (STRING, from the input)

Text that is not /proc/loadavg fails the record (the decode failure names it).
--]]

local lpeg = require "lpeg"

local keep_payload = read_config("payload_keep")

local digits = lpeg.R("09")^1
local blanks = lpeg.S(" \t")^1
local average = (digits * (lpeg.P(".") * digits)^-1) / tonumber

-- The five columns: three averages, runnable/existing entities, the last pid given out.
local loadavg = lpeg.Ct(
    lpeg.Cg(average, "1MinAvg") * blanks
    * lpeg.Cg(average, "5MinAvg") * blanks
    * lpeg.Cg(average, "15MinAvg") * blanks
    * lpeg.Cg(digits / tonumber, "NumProcesses") * "/" * digits * blanks
    * digits * lpeg.S(" \t\r\n")^0 * -1
)

function process_message()
    local text = read_message("Payload")
    local fields = loadavg:match(text)
    if not fields then
        return -1, "not the contents of /proc/loadavg"
    end
    fields.FilePath = read_message("Fields[FilePath]")
    local payload
    if keep_payload then
        payload = text
    end
    inject_message({Type = "stats.loadavg", Payload = payload, Fields = fields})
    return 0
end
