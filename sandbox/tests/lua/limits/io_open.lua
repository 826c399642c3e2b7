function process_message()
    local f = io.open("/etc/passwd")
    return 0
end
