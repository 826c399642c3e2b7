function process_message()
    add_to_payload(string.rep("x", 70000))
    inject_payload()
    return 0
end
