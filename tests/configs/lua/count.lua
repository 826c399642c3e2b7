local n = 0

function process_message()
    n = n + 1
    return 0
end

function timer_event(ns)
    inject_payload("txt", "count", n)
end
