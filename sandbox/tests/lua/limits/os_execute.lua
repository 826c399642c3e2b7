function process_message()
    os.execute("touch /tmp/hekate-sandbox-escaped")
    return 0
end
