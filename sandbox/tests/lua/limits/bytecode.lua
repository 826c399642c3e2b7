function process_message()
    local f = load(string.dump(function() return 1 end))
    return 0
end
