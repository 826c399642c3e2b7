-- Decodes nginx `combined` access-log lines:
-- $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
require "string"
local l = require "lpeg"
local clf = require "clf_time"
l.locale(l)

local sp = l.P" "
local function quoted(name)
    return l.P'"' * l.Cg((1 - l.P'"')^0, name) * l.P'"'
end
local grammar = l.Ct(
    l.Cg((1 - sp)^1, "remote_addr") * sp * "-" * sp *
    l.Cg((1 - sp)^1, "remote_user") * sp *
    "[" * l.Cg(clf.time_local, "time") * "]" * sp *
    quoted("request") * sp *
    l.Cg(l.digit^1 / tonumber, "status") * sp *
    l.Cg(l.digit^1 / tonumber, "body_bytes_sent") * sp *
    quoted("http_referer") * sp *
    quoted("http_user_agent") * l.P(-1))

local request_line = l.Ct(l.Cg(l.upper^1, "method") * sp * l.Cg((1 - sp)^1, "url") * sp *
                          l.Cg(l.P"HTTP/" * (l.digit + ".")^1, "protocol"))

local msg = {Type = "nginx.access", Logger = read_config("logger")}

function process_message()
    local line = read_message("Payload")
    local f = grammar:match(line)
    if not f then return -1, "Failed to parse line" end
    msg.Timestamp = f.time
    f.time = nil
    local r = request_line:match(f.request)
    if r then
        f.request_method, f.request_url, f.request_protocol = r.method, r.url, r.protocol
    end
    f.status = {value = f.status, value_type = 2}
    f.body_bytes_sent = {value = f.body_bytes_sent, value_type = 2, representation = "B"}
    msg.Fields = f
    inject_message(msg)
    return 0
end
