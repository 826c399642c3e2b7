-- Common Log Format time (`10/Oct/2023:13:55:36 +0000`) as an LPeg pattern capturing ns since
-- the epoch. Written in lua_sandbox's module style (setfenv to a private table).
local l = require "lpeg"
local os = require "os"
local tonumber = tonumber

local M = {}
setfenv(1, M)

local months = {Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12}

local digit = l.R"09"
local d2 = (digit * digit) / tonumber
local d4 = (digit * digit * digit * digit) / tonumber
local mon = (l.R"AZ" * l.R"az" * l.R"az") / months
local zone = l.C(l.S"+-") * d2 * d2

time_local = (d2 * "/" * mon * "/" * d4 * ":" * d2 * ":" * d2 * ":" * d2 * " " * zone) /
    function(d, mo, y, h, mi, s, sign, zh, zm)
        local t = os.time({year = y, month = mo, day = d, hour = h, min = mi, sec = s})
        local off = zh * 3600 + zm * 60
        if sign == "-" then off = -off end
        return (t - off) * 1e9
    end

return M
