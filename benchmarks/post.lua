-- wrk script: every request is a new, valid response with a fresh random UUID (version 4).
local office = os.getenv("BENCH_OFFICE") or "bench-office"
math.randomseed(os.time())

local function uuid4()
  local template = "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx"
  return (template:gsub("[xy]", function(c)
    local v = (c == "x") and math.random(0, 15) or math.random(8, 11)
    return string.format("%x", v)
  end))
end

request = function()
  local body = string.format(
    '{"id":"%s","office":"%s","survey":"atmosphere","version":1,"channel":"kiosk",' ..
    '"placement":"waiting","lang":"de","answers":{"stress_now":%d,"respect":%d,"rooms":%d,' ..
    '"effort":%d,"overall":%d},"comment":"Wartezeit ok"}',
    uuid4(), office, math.random(1, 5), math.random(1, 5), math.random(1, 5),
    math.random(1, 5), math.random(1, 5))
  return wrk.format("POST", "/api/v1/responses", {["Content-Type"] = "application/json"}, body)
end
