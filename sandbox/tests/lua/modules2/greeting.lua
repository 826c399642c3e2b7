-- A plain module returning a table; counts how often its body ran.
loads = (loads or 0) + 1
local M = {}
function M.hello(name) return "hello " .. name end
return M
