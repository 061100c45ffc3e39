-- wrk script: every request is a new, valid response with a fresh random UUID (version 4).
-- At the end it prints how many answers were 201 (created), 200 (an identical retry: there must
-- be none, since every id is new) and anything else, summed over wrk's threads.
local office = os.getenv("BENCH_OFFICE") or "bench-office"
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  -- Each thread draws its own sequence: seeded with the time and the thread's number.
  math.randomseed(os.time() * 1000 + id)
  created, retried, other = 0, 0, 0
end

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

response = function(status, headers, body)
  if status == 201 then
    created = created + 1
  elseif status == 200 then
    retried = retried + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local c, r, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("created")
    r = r + thread:get("retried")
    o = o + thread:get("other")
  end
  io.write(string.format("statuses: created %d retried %d other %d\n", c, r, o))
end
