-- Touches every read path and round-trips the message; must never fail on any input.
require "cjson"
local headers = {"Type", "Logger", "Payload", "EnvVersion", "Hostname", "Uuid", "Timestamp",
                 "Severity", "Pid", "raw"}

function process_message()
    for _, h in ipairs(headers) do read_message(h) end
    local fields = 0
    while true do
        local vt, name, value, repr, count = read_next_field()
        if not vt then break end
        fields = fields + 1
        for ai = 0, count do read_message("Fields[" .. name .. "]", 0, ai) end
    end
    local raw = read_message("raw")
    if raw then
        local ok, m = pcall(decode_message, raw)
        if ok then
            pcall(inject_message, m)
            pcall(cjson.encode, m)
        end
        pcall(inject_message, raw)
    end
    pcall(write_message, "Fields[added]", fields)
    pcall(write_message, "Payload", read_message("Payload"))
    add_to_payload(read_message("Payload"), fields, read_message("Timestamp"))
    pcall(inject_payload, "txt", "x")
    return 0
end
