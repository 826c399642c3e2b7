function process_message()
    return 0
end
