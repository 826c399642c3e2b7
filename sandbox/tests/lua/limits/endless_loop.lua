function process_message()
    while true do end
    return 0
end
