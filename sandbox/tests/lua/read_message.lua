-- Reads every header and field form, and every error path, into the global table `r`.
local function err(f, ...)
    local ok, e = pcall(f, ...)
    if ok then return "no error" end
    return e
end

function process_message()
    r = {}
    for _, h in ipairs({"Type", "Logger", "Payload", "EnvVersion", "Hostname", "Uuid",
                        "Timestamp", "Severity", "Pid", "raw"}) do
        r[h] = read_message(h)
    end
    r.str0 = read_message("Fields[str]")
    r.str1 = read_message("Fields[str]", 1)
    r.str1_0 = read_message("Fields[str]", 1, 0)
    r.str2 = read_message("Fields[str]", 2)
    r.int = read_message("Fields[int]")
    r.dbl = read_message("Fields[dbl]")
    r.bool = read_message("Fields[bool]")
    r.bytes = read_message("Fields[bytes]")
    r.empty_bytes = read_message("Fields[empty_bytes]")
    r.arr1 = read_message("Fields[arr]", 0, 1)
    r.arr2 = read_message("Fields[arr]", 0, 2)
    r.arr3 = read_message("Fields[arr]", 0, 3)
    r.missing = read_message("Fields[nope]")
    r.unknown = read_message("Nope")
    r.e0 = err(function() return read_message() end)
    r.e4 = err(function() return read_message("Type", 0, 0, 0) end)
    r.efi = err(function() return read_message("Fields[str]", -1) end)
    r.eai = err(function() return read_message("Fields[str]", 0, -1) end)
    r.efi_type = err(function() return read_message("Fields[str]", "x") end)
    r.ename = err(function() return read_message({}) end)
    r.err_type = type(r.e0)
    return 0
end
