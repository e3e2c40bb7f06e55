-- resty.leader_election: the elections of ngx_http_leader_election_module,
-- asked from Lua (lua-nginx-module, OpenResty).
--
--     local le = require "resty.leader_election"
--     le.is_leader([name])      -- true/false, as $leader_election_is_leader
--     le.fencing_token([name])  -- number while leading, else nil
--     le.state([name])          -- every variable's value, from one read
--
-- name: the election (leader_election NAME { ... } in http{}); nil means
-- the first one defined.  Works in every phase from init_worker_by_lua* on,
-- timers included (no ngx.var, no request needed): it calls the module's
-- C API (module/ngx_http_leader_election.h) through LuaJIT's FFI, as
-- lua-resty-core does, and reads the same shared memory as the variables.
-- See docs/lua.md.
--
-- Errors are raised (error()) for what a configuration or the code must
-- fix: the module is not loaded, no such election, init_by_lua*.  A read
-- of the shared state that fails (its writer died mid-write) is a "not
-- leader": is_leader() false, fencing_token() nil, state() nil and a
-- message.

local ffi = require "ffi"

local C = ffi.C
local ffi_new = ffi.new
local ffi_str = ffi.string
local error = error
local pcall = pcall
local tonumber = tonumber
local type = type
local get_phase = ngx.get_phase


local _M = { _VERSION = "0.1" }


if not pcall(ffi.typeof, "ngx_str_t") then
    ffi.cdef[[
        typedef struct {
            size_t                 len;
            const unsigned char   *data;
        } ngx_str_t;
    ]]
end

if not pcall(ffi.typeof, "ngx_cycle_t") then
    ffi.cdef[[
        typedef struct ngx_cycle_s  ngx_cycle_t;
    ]]
end

-- already declared by another library: C.ngx_cycle works the same
pcall(ffi.cdef, [[
    extern ngx_cycle_t  *ngx_cycle;
]])

-- ngx_uint_t and ngx_int_t are uintptr_t and intptr_t; the layout of
-- ngx_http_leader_election_state_t is the header's, which ships with this
-- file (the same package, the same source tree).
ffi.cdef[[
    typedef struct ngx_http_leader_election_s  ngx_http_leader_election_t;

    typedef struct {
        uintptr_t      is_leader;
        int32_t        fencing_token;
        int32_t        transitions;
        ngx_str_t      identity;
        ngx_str_t      holder;
        ngx_str_t      holder_address;
        unsigned char  holder_data[256];
        unsigned char  address_data[128];
        ngx_str_t      route;
    } ngx_http_leader_election_state_t;

    ngx_http_leader_election_t *ngx_http_leader_election_lookup(
        ngx_cycle_t *cycle, ngx_str_t *name);
    uintptr_t ngx_http_leader_election_leads(
        ngx_http_leader_election_t *le, int32_t *token);
    intptr_t ngx_http_leader_election_state(
        ngx_http_leader_election_t *le,
        ngx_http_leader_election_state_t *st);
]]


local NOT_LOADED = "resty.leader_election: ngx_http_leader_election_module "
                   .. "is not loaded (add \"load_module "
                   .. "modules/ngx_http_leader_election_module.so;\" to "
                   .. "nginx.conf)"

-- one of each per worker: Lua code never runs two of these calls at once
local name_buf = ffi_new("ngx_str_t[1]")
local token_buf = ffi_new("int32_t[1]")
local state_buf = ffi_new("ngx_http_leader_election_state_t")

local loaded           -- nil: not checked yet
local cycle            -- the cycle the elections below belong to
local elections = {}   -- name ("" for the first) -> election pointer


-- the first call for a name: checks what a configuration or the code must
-- fix, then asks the module
local function find(name)
    if loaded == nil then
        -- the symbol resolves only if the module's .so is loaded
        loaded = pcall(function ()
            return C.ngx_http_leader_election_lookup
        end)
    end

    if not loaded then
        error(NOT_LOADED, 4)
    end

    if name ~= nil and type(name) ~= "string" then
        error("resty.leader_election: the election name must be a string, "
              .. "not a " .. type(name), 4)
    end

    if get_phase() == "init" then
        -- the master, with no shared memory mapped yet
        error("resty.leader_election: not available in init_by_lua*: the "
              .. "elections' state is read from init_worker_by_lua* on",
              4)
    end

    local current = C.ngx_cycle
    if current ~= cycle then
        cycle = current
        elections = {}
    end

    local key = name or ""

    name_buf[0].data = key
    name_buf[0].len = #key

    local le = C.ngx_http_leader_election_lookup(cycle, name_buf)

    name_buf[0].data = nil

    if le == nil then
        if key == "" then
            error("resty.leader_election: no leader_election is defined in "
                  .. "http{}", 4)
        end

        error("resty.leader_election: no leader_election \"" .. key
              .. "\" is defined in http{}", 4)
    end

    elections[key] = le

    return le
end


-- the election, from the cache while the cycle is the one it was found in
-- (a worker's cycle never changes; a check costs nothing)
local function lookup(name)
    if C.ngx_cycle == cycle then
        local le = elections[name or ""]
        if le then
            return le
        end
    end

    local le = find(name)    -- not a tail call: error()'s level 4 is the
    return le                -- caller of is_leader(), fencing_token(), ...
end


-- true while this instance leads the election: $leader_election_is_leader
function _M.is_leader(name)
    local le = lookup(name)    -- first: it checks that the symbols exist
    return C.ngx_http_leader_election_leads(le, nil) == 1
end


-- the term of this instance's claim while it leads, else nil: pass it to
-- the guarded system ($leader_election_fencing_token)
function _M.fencing_token(name)
    local le = lookup(name)
    if C.ngx_http_leader_election_leads(le, token_buf) == 1 then
        return tonumber(token_buf[0])
    end

    return nil
end


local function str(s)
    if s.len == 0 then
        return ""
    end

    return ffi_str(s.data, s.len)
end


-- every value of the variables, from one copy of the shared state:
-- is_leader, holder, holder_address, identity, transitions,
-- fencing_token (nil unless leading), route ("self", an address or "")
function _M.state(name)
    local le = lookup(name)
    local st = state_buf

    if C.ngx_http_leader_election_state(le, st) ~= 0 then
        return nil, "resty.leader_election: the shared state could not be "
                    .. "read"
    end

    local leading = st.is_leader == 1

    return {
        is_leader = leading,
        holder = str(st.holder),
        holder_address = str(st.holder_address),
        identity = str(st.identity),
        transitions = tonumber(st.transitions),
        fencing_token = leading and tonumber(st.fencing_token) or nil,
        route = str(st.route),
    }
end


return _M
