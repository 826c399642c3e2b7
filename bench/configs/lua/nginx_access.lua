-- sandbox workload (bench/configs/sandbox-decoder.toml): an LPeg decoder for the nginx access
-- lines hekate-flood writes (bench/src/load.rs, `Pick::access_line`):
--
--   10.1.2.3 - - [24/Nov/2026:21:33:12 +0000] "GET /a HTTP/1.1" 200 512 "-" "curl/8" 0.042 text
--
-- Each line becomes a message of Type `read_config("type")` with the timestamp of the line and
-- one field per part; anything after the request time is ignored. A line that does not parse
-- fails (a decode failure).

local l = require "lpeg"

local msg_type = read_config("type") or "nginx.access"

local months = {
    Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
    Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12,
}

local function timestamp(day, month, year, hour, min, sec, sign, oh, om)
    local t = os.time({year = year, month = months[month], day = day,
                       hour = hour, min = min, sec = sec})
    local offset = (oh * 3600 + om * 60) * (sign == "-" and -1 or 1)
    return (t - offset) * 1e9
end

local digit = l.R("09")
-- Exactly n digits, as a number (`digit ^ n` would mean at least n).
local function num(n)
    local p = digit
    for _ = 2, n do p = p * digit end
    return p / tonumber
end
local sp = l.P(" ")
local token = l.C((1 - sp) ^ 1)
local quoted = '"' * l.C((1 - l.P('"')) ^ 0) * '"'
local time = "[" * (num(2) * "/" * l.C(l.R("AZ") * l.R("az") ^ 2) * "/" * num(4) * ":" * num(2)
    * ":" * num(2) * ":" * num(2) * " " * l.C(l.S("+-")) * num(2) * num(2)) / timestamp * "]"

local line = l.Ct(
    l.Cg(token, "remote_addr") * sp * l.Cg(token, "remote_ident") * sp
    * l.Cg(token, "remote_user") * sp * l.Cg(time, "time") * sp
    * '"' * l.Cg(token, "method") * sp * l.Cg(token, "path") * sp
    * l.Cg(l.C((1 - l.P('"')) ^ 1), "protocol") * '"' * sp
    * l.Cg(digit ^ 1 / tonumber, "status") * sp
    * l.Cg(digit ^ 1 / tonumber, "body_bytes_sent") * sp
    * l.Cg(quoted, "http_referer") * sp * l.Cg(quoted, "http_user_agent")
    * (sp * l.Cg((digit + ".") ^ 1 / tonumber, "request_time")) ^ -1
)

local msg = {Type = msg_type, Fields = nil}

function process_message()
    local fields = line:match(read_message("Payload"))
    if not fields then return -1, "not an nginx access line" end
    msg.Timestamp = fields.time
    fields.time = nil
    msg.Fields = fields
    inject_message(msg)
    return 0
end
