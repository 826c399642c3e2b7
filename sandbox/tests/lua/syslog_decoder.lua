-- Decodes RFC 3164 syslog lines: <PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG
local l = require "lpeg"
l.locale(l)

local year = read_config("year") or tonumber(os.date("!%Y"))
local months = {Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12}
local digit = l.digit
local d2 = (digit * digit) / tonumber
local day = ((l.P" " * digit) + (digit * digit)) / tonumber
local mon = (l.upper * l.lower * l.lower) / months
local timestamp = (mon * " " * day * " " * d2 * ":" * d2 * ":" * d2) /
    function(mo, d, h, mi, s)
        return os.time({year = year, month = mo, day = d, hour = h, min = mi, sec = s}) * 1e9
    end

local grammar = l.Ct(
    "<" * l.Cg(digit^1 / tonumber, "pri") * ">" *
    l.Cg(timestamp, "timestamp") * " " *
    l.Cg((1 - l.space)^1, "hostname") * " " *
    l.Cg((1 - l.S"[: ")^1, "programname") *
    (l.P"[" * l.Cg(digit^1 / tonumber, "pid") * "]")^-1 * ":" * l.space^0 *
    l.Cg(l.P(1)^0, "msg"))

function process_message()
    local s = grammar:match(read_message("Payload"))
    if not s then return -1, "not RFC 3164" end
    inject_message({
        Type = "syslog",
        Timestamp = s.timestamp,
        Hostname = s.hostname,
        Severity = s.pri % 8,
        Pid = s.pid,
        Payload = s.msg,
        Fields = {
            syslogfacility = {value = math.floor(s.pri / 8), value_type = 2},
            programname = s.programname,
        },
    })
    return 0
end
