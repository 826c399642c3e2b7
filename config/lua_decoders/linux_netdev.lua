--[[
linux_netdev.lua: turns the contents of /proc/net/dev, as a FilePollingInput reads it, into one
message of Type "stats.netdev" per network interface -- the messages Heka's decoder of the same
name makes, so filters and dashboards written for Heka keep working.

    [netdev]
    type = "FilePollingInput"
    ticker_interval = 1
    file_path = "/proc/net/dev"
    decoder = "netdev_decoder"

    [netdev_decoder]
    type = "SandboxDecoder"
    filename = "/usr/share/hekate/lua_decoders/linux_netdev.lua"

    # [netdev_decoder.config]
    # payload_keep = true   # keep the file's text as the Payload (default: no Payload)

The counters are named from the file's two header lines, "receive_" or "transmit_" then the
column's name: receive_bytes, receive_packets, receive_errs, receive_drop, receive_fifo,
receive_frame, receive_compressed, receive_multicast, transmit_bytes, transmit_packets,
transmit_errs, transmit_drop, transmit_fifo, transmit_colls, transmit_carrier,
transmit_compressed (all DOUBLE, as the kernel counts them since boot). Each message also has
netdevice (STRING, the interface: "lo", "eth0", "br-1f2e", ...) and FilePath (STRING, from
the input). Interface names Heka's decoder rejects (with "-", "." or capitals) are kept.
Text without the header or without an interface line fails the record.
--]]

local keep_payload = read_config("payload_keep")

-- From the second header line (" face |bytes packets ...|bytes packets ..."), the field names
-- in column order, or nil.
local function field_names(header)
    local receive, transmit = header:match("^[^|]*|([^|]*)|([^|]*)$")
    if not receive then
        return nil
    end
    local names = {}
    for word in receive:gmatch("%S+") do
        names[#names + 1] = "receive_" .. word
    end
    for word in transmit:gmatch("%S+") do
        names[#names + 1] = "transmit_" .. word
    end
    return names
end

function process_message()
    local text = read_message("Payload")
    local file_path = read_message("Fields[FilePath]")
    local payload
    if keep_payload then
        payload = text
    end
    local names
    local sent = 0
    for line in text:gmatch("[^\n]+") do
        local interface, numbers = line:match("^%s*([^:|%s]+):(.*)$")
        if not interface and line:find("|", 1, true) then
            -- The first header line names the groups, the second the columns: the last wins.
            names = field_names(line) or names
        elseif interface and names then
            local fields = {}
            local i = 0
            for word in numbers:gmatch("%S+") do
                i = i + 1
                local name = names[i]
                if name then
                    fields[name] = tonumber(word)
                end
            end
            fields.netdevice = interface
            fields.FilePath = file_path
            inject_message({Type = "stats.netdev", Payload = payload, Fields = fields})
            sent = sent + 1
        end
    end
    if sent == 0 then
        return -1, "not the contents of /proc/net/dev"
    end
    return 0
end
