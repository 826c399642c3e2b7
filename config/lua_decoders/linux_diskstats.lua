--[[
linux_diskstats.lua: turns disk I/O counters, as a FilePollingInput reads them, into messages
of Type "stats.diskstats" with the fields of Heka's decoder of the same name, so filters and
dashboards written for Heka keep working. It reads either file:

- /proc/diskstats, every block device on one line ("   8       0 sda 20123 11267 ..."): one
  message per device, with the device's name in the field Device (hekate's addition: Heka's
  decoder reads one device's file, named by FilePath);
- /sys/block/<disk>/stat, one device, numbers only: one message, exactly Heka's.

    [diskstats]
    type = "FilePollingInput"
    ticker_interval = 1
    file_path = "/proc/diskstats"
    decoder = "diskstats_decoder"

    [diskstats_decoder]
    type = "SandboxDecoder"
    filename = "/usr/share/hekate/lua_decoders/linux_diskstats.lua"

    # [diskstats_decoder.config]
    # payload_keep = true            # keep the file's text as the Payload (default: no Payload)
    # device_match = "^[sv]d%a+$"    # a Lua pattern: only the devices whose name matches

Fields, all DOUBLE and as the kernel counts them (sectors of 512 bytes, times in ms), in the
kernel's column order: ReadsCompleted, ReadsMerged, SectorsRead, TimeReading,
WritesCompleted, WritesMerged, SectorsWritten, TimeWriting, NumIOInProgress, TimeDoingIO,
WeightedTimeDoingIO; then TickerInterval (DOUBLE, seconds, from the input), FilePath (STRING,
from the input) and, from /proc/diskstats, Device (STRING). Newer kernels add discard and
flush columns after these eleven: they are left out (Heka's decoder has no fields for them).
Text without a single device line fails the record.
--]]

local keep_payload = read_config("payload_keep")
local device_match = read_config("device_match")

-- Heka's names for the kernel's first eleven columns (Documentation/admin-guide/iostats).
local columns = {
    "ReadsCompleted", "ReadsMerged", "SectorsRead", "TimeReading",
    "WritesCompleted", "WritesMerged", "SectorsWritten", "TimeWriting",
    "NumIOInProgress", "TimeDoingIO", "WeightedTimeDoingIO",
}

local function words(line)
    local list = {}
    for word in line:gmatch("%S+") do
        list[#list + 1] = word
    end
    return list
end

-- The fields of the eleven counters starting at list[first], or nil if one is not a number.
local function counters(list, first)
    if #list < first + #columns - 1 then
        return nil
    end
    local fields = {}
    for i, name in ipairs(columns) do
        local n = tonumber(list[first + i - 1])
        if not n then
            return nil
        end
        fields[name] = n
    end
    return fields
end

function process_message()
    local text = read_message("Payload")
    local file_path = read_message("Fields[FilePath]")
    local ticker_interval = read_message("Fields[TickerInterval]")
    local payload
    if keep_payload then
        payload = text
    end
    local devices = 0
    for line in text:gmatch("[^\n]+") do
        local list = words(line)
        local fields, device
        if tonumber(list[1]) and tonumber(list[2]) and list[3] and not tonumber(list[3]) then
            device = list[3]
            fields = counters(list, 4)
        else
            fields = counters(list, 1)
        end
        if fields then
            devices = devices + 1
        end
        if fields and (not device or not device_match or device:match(device_match)) then
            fields.TickerInterval = ticker_interval
            fields.FilePath = file_path
            fields.Device = device
            inject_message({Type = "stats.diskstats", Payload = payload, Fields = fields})
        end
    end
    if devices == 0 then
        return -1, "no disk counters: neither /proc/diskstats nor /sys/block/<disk>/stat"
    end
    return 0
end
