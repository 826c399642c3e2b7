-- string.find, match, gmatch, gsub (and gfind) on a table of patterns; `run()` returns one
-- line per case. patterns.expected is what stock Lua 5.1.5 (`lua5.1 -e 'dofile("patterns.lua")
-- io.write(run())'`) prints; the sandbox's budgeted copy of the matcher must print the same.

local function show(v)
  local t = type(v)
  if t == "string" then return string.format("%q", v) end
  return tostring(v)
end

local function pack(ok, ...)
  local out = {ok and "ok" or "err"}
  for i = 1, select("#", ...) do out[#out + 1] = show((select(i, ...))) end
  return table.concat(out, " ")
end

local lines = {}
local function case(name, f, ...)
  lines[#lines + 1] = name .. ": " .. pack(pcall(f, ...))
end

local function all(iter_s, p)
  local out = {}
  for a, b, c in string.gmatch(iter_s, p) do
    out[#out + 1] = show(a) .. "," .. show(b) .. "," .. show(c)
  end
  return table.concat(out, ";")
end

local function all_gfind(iter_s, p)
  local out = {}
  for a in string.gfind(iter_s, p) do out[#out + 1] = show(a) end
  return table.concat(out, ";")
end

local subjects = {
  "", "a", "hello world", "  padded  ", "key=value; k2=v2", "THE (quick) fox",
  "f(a(b)c)d", "x = [[nested [brackets] ]]", "192.168.0.1 - - [10/Oct/2000:13:55:36 -0700]",
  "aaa", "a.b.c", "%d%s", "\0nul\0", "tab\there", "line1\nline2\n", "MiXeD123_case",
  "THE (quick) fox jumps over the lazy dog end",
}

local patterns = {
  "", "a", "^a", "a$", "^$", ".", "..", "a*", "a+", "a-", "a?", "^(a*)(.-)$",
  "(%w+)", "(%a+)%s*=%s*(%w+)", "%s+", "%S+", "%d+", "%D+", "%l+", "%u+", "%p+", "%x+",
  "%c", "%z", "%Z", "%W+", "%A+", "[aeiou]", "[^aeiou]+", "[a-f]+", "[%a_][%w_]*",
  "[%]]", "[]]", "[^]]+", "[a-]", "[-a]", "%b()", "%b[]", "%bxy", "%f[%w]%w+",
  "%f[%W]", "%f[%z]", "%f[%a]", "()a()", "()", "(a)(b)?", "((a)(b))", "(.)%1",
  "(h)(e)(l)(l)(o)", "^(%d+)%.(%d+)%.(%d+)%.(%d+)", "%[(.-)%]", "(.-)%s", "(.*)%s",
  "x*$", "^(.-) (.-) (.-) (.-) end$", "%.", "%%", "a.-b", "[%d%.]+", "[+-]?%d+",
  "^[ \t]*(.-)[ \t]*$", "(%w+)=(%w+)", "[\0-\31]", "%s*$",
}

function run()
  lines = {}
  for si, s in ipairs(subjects) do
    for pi, p in ipairs(patterns) do
      local id = si .. "/" .. pi
      case("find " .. id, string.find, s, p)
      case("find+2 " .. id, string.find, s, p, 2)
      case("find-3 " .. id, string.find, s, p, -3)
      case("match " .. id, string.match, s, p)
      case("match+3 " .. id, string.match, s, p, 3)
      case("gsub " .. id, string.gsub, s, p, "<%0>")
      case("gsub1 " .. id, string.gsub, s, p, "[%1]", 1)
      case("gmatch " .. id, all, s, p)
    end
  end
  -- plain find, init beyond the ends
  case("plain", string.find, "a.b.c", ".", 1, true)
  case("plain2", string.find, "a.b.c", ".b", 1, true)
  case("plain3", string.find, "a.b.c", "b", 10)
  case("plain4", string.find, "a.b.c", "", 10)
  case("plain5", string.find, "a.b.c", "", -10)
  case("plain6", string.find, "abc", "c", -1)
  case("nospecial", string.find, "abcabc", "ca", 2)
  -- numbers as arguments
  case("num", string.find, 12345, 34)
  case("num2", string.match, 3.25, "%d+")
  case("num3", string.gsub, 1234, "2", 9)
  -- gsub replacements: tables, functions, false/nil, %0-%9, escapes, limits
  case("gsub-table", string.gsub, "$name is $age", "%$(%w+)", {name = "Ann", age = 7})
  case("gsub-table-miss", string.gsub, "$x $y", "%$(%w+)", {x = false})
  case("gsub-func", string.gsub, "hello world", "%w+", function(w) return w:upper() end)
  case("gsub-func-nil", string.gsub, "hello world", "%w+", function() end)
  case("gsub-func-2caps", string.gsub, "k=v, a=b", "(%w+)=(%w+)", function(k, v) return v .. "=" .. k end)
  case("gsub-func-pos", string.gsub, "abc", "()", function(p) return p end)
  case("gsub-func-num", string.gsub, "abc", "%w", function(c) return 1.5 end)
  case("gsub-func-bad", string.gsub, "abc", "%w", function(c) return {} end)
  case("gsub-func-err", string.gsub, "abc", "%w", function(c) error("boom", 0) end)
  case("gsub-pct", string.gsub, "abc", "(b)", "%%%1%%")
  case("gsub-pct-x", string.gsub, "abc", "b", "%x")
  case("gsub-bad-cap", string.gsub, "abc", "b", "%2")
  case("gsub-poscap", string.gsub, "abc", "()b", "%1")
  case("gsub-max0", string.gsub, "aaa", "a", "b", 0)
  case("gsub-max-neg", string.gsub, "aaa", "a", "b", -1)
  case("gsub-anchor", string.gsub, "aaa", "^a", "b")
  case("gsub-empty", string.gsub, "abc", "", "-")
  case("gsub-star", string.gsub, "abc", "x*", "-")
  case("gsub-bool", string.gsub, "abc", "b", true)
  case("gsub-nil", string.gsub, "abc", "b")
  case("gsub-all9", string.gsub, "abcdefghi", "(a)(b)(c)(d)(e)(f)(g)(h)(i)", "%9%8%7%6%5%4%3%2%1%0")
  -- errors
  case("err-pct", string.find, "abc", "%")
  case("err-bracket", string.find, "abc", "[a")
  case("err-bracket2", string.find, "abc", "[")
  case("err-unfinished", string.match, "abc", "(a")
  case("err-close", string.match, "abc", "a)")
  case("err-capidx", string.match, "abc", "%1")
  case("err-capidx2", string.match, "abc", "(a)%2")
  case("err-balance", string.find, "abc", "%b")
  case("err-balance2", string.find, "abc", "%ba")
  case("err-frontier", string.find, "abc", "%fa")
  case("err-too-many", string.match, string.rep("a", 40), string.rep("(a)", 33))
  -- (32 results straight into pcall trip Lua 5.1's API check in debug builds: packed first)
  case("caps-32", function(s, p) return table.concat({string.match(s, p)}, ",") end,
    string.rep("a", 40), string.rep("(a)", 32))
  case("err-arg1", string.find, nil, "a")
  case("err-arg2", string.match, "a", {})
  case("err-arg3", string.gsub, "a", "a", nil)
  case("err-gmatch", string.gmatch, nil, "a")
  case("err-init", string.find, "abc", "a", "x")
  case("gfind", all_gfind, "one two three", "%a+")
  -- gmatch with an anchor ('^' is an ordinary character in gmatch, 5.1)
  case("gmatch-anchor", all, "^a^a", "^a")
  case("gmatch-empty", all, "abc", "")
  case("gmatch-poscap", all, "abc", "()(.)")
  return table.concat(lines, "\n") .. "\n"
end
