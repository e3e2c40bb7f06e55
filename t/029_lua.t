# resty.leader_election (lua/resty/leader_election.lua) in Debian's
# lua-nginx-module: is_leader, fencing_token and state against the
# variables; a named election; every request phase; a timer started in
# init_worker_by_lua, where ngx.var does not exist; a step down; the
# singleton-job recipe of docs/lua.md; clear errors (no such election,
# init_by_lua, the module not loaded).

use Kle::Emulator;
use Kle::Nginx;
use Kle::Lua;
use Test::Nginx::Socket;
use Time::HiRes qw(sleep);

repeat_each(1);
no_shuffle();
no_long_string();
log_level('info');

if (my $why = Kle::Lua::missing()) {
    plan skip_all => $why;
}

our $Self = "127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}";
our $Remote = '10.9.8.7:8080';

# l-lead: free, taken as the 5th transition; l-held: boss's for an hour;
# l-job: free, taken as the 1st (the recipe's).
put_lease('l-lead', holder => '', secs => 1, transitions => 4,
          annotations => {});
put_lease('l-held', holder => 'boss', secs => 3600, transitions => 2,
          address => $Remote);
put_lease('l-job', holder => '', secs => 1, transitions => 0,
          annotations => {});

sub election {
    my ($name, $lock) = @_;
    return <<"_EOC_";
    leader_election $name {
        lock            leases default/$lock;
        identity        me;
        address         $main::Self;
        lease_duration  3s;
        renew_deadline  2s;
        retry_period    500ms;
        api_server      kubeconfig $ENV{TEST_NGINX_KUBECONFIG};
    }
_EOC_
}

our $Elections = election('web', 'l-lead') . election('b', 'l-held');

# state() and the variables, printed alike: "k=v ..." in a fixed order
our $Show = <<'_EOC_';
    local function show(s)
        return string.format(
            "is_leader=%s holder=%s holder_address=%s identity=%s "
            .. "transitions=%s fencing_token=%s route=%s",
            tostring(s.is_leader), s.holder, s.holder_address, s.identity,
            tostring(s.transitions), tostring(s.fencing_token), s.route)
    end
_EOC_

sub body { nginx_var($_[0]) // '' }

# the term of l-lead's holder: each block's nginx is a new instance, which
# takes the lock as a new term
sub term { get_object('leases', 'default', 'l-lead')->{spec}{leaseTransitions} }

plan tests => 51;

run_tests();

__DATA__

=== TEST 1: the leader: is_leader, fencing_token and state() say what the variables say
--- http_config eval
$main::Elections
--- config eval
"location = /t {
    content_by_lua_block {
$main::Show
        local le = require 'resty.leader_election'
        local v = ngx.var
        ngx.say(tostring(le.is_leader()), ' ', tostring(le.fencing_token()))
        ngx.say(show(le.state()))
        ngx.say(show({
            is_leader = v.leader_election_is_leader == '1',
            holder = v.leader_election_holder,
            holder_address = v.leader_election_holder_address,
            identity = v.leader_election_identity,
            transitions = tonumber(v.leader_election_transitions),
            fencing_token = tonumber(v.leader_election_fencing_token),
            route = v.leader_election_route,
        }))
        ngx.say(show(le.state('web')))
    }
}"
--- init
wait_until(5, sub { body('/t') =~ /^true 5/ });
--- request
GET /t
--- response_body eval
my $s = "is_leader=true holder=me holder_address=$main::Self identity=me "
      . "transitions=5 fencing_token=5 route=self\n";
"true 5\n$s$s$s"
--- no_error_log
[error]
[alert]
[crit]



=== TEST 2: a named election this instance follows: false, nil, the holder's route
--- request
GET /b
--- config eval
"location = /b {
    content_by_lua_block {
$main::Show
        local le = require 'resty.leader_election'
        ngx.say(tostring(le.is_leader('b')), ' ', tostring(le.fencing_token('b')))
        ngx.say(show(le.state('b')))
        ngx.say(ngx.var.leader_election_route_b)
    }
}"
--- http_config eval
$main::Elections
--- init
wait_until(5, sub { body('/b') =~ /holder=boss/ });
--- response_body eval
"false nil\nis_leader=false holder=boss holder_address=$main::Remote "
. "identity=me transitions=2 fencing_token=nil route=$main::Remote\n"
. "$main::Remote\n"
--- no_error_log
[error]
[alert]
[crit]



=== TEST 3: a timer started in init_worker_by_lua, where ngx.var does not exist
--- http_config eval
$main::Elections . <<'_EOC_';
    lua_shared_dict seen 1m;
    init_worker_by_lua_block {
        local le = require "resty.leader_election"
        -- at once, before the elector has read anything: not leading
        ngx.shared.seen:set("init_worker", tostring(le.is_leader()))
        ngx.timer.every(0.1, function ()
            local ok = pcall(function () return ngx.var.anything end)
            local s = le.state()
            ngx.shared.seen:set("timer", string.format(
                "ngx.var=%s is_leader=%s token=%s state.fencing_token=%s "
                .. "route=%s b=%s", tostring(ok), tostring(le.is_leader()),
                tostring(le.fencing_token()), tostring(s.fencing_token),
                s.route, le.state("b").route))
        end)
    }
_EOC_
--- config
    location = /seen {
        content_by_lua_block {
            ngx.say(ngx.shared.seen:get("init_worker"))
            ngx.say(ngx.shared.seen:get("timer"))
        }
    }
--- init
wait_until(5, sub { body('/seen') =~ /is_leader=true/ });
my $t = main::term();
is(body('/seen'), "false\nngx.var=false is_leader=true token=$t "
   . "state.fencing_token=$t route=self b=$main::Remote\n",
   "the timer's token is the Lease's term ($t)");
--- request
GET /seen
--- response_body_like eval
qr/^false\nngx.var=false is_leader=true token=(\d+) state.fencing_token=\1 route=self b=\Q$main::Remote\E\n\z/
--- no_error_log
[error]
[alert]
[crit]



=== TEST 4: every request phase
--- http_config eval
$main::Elections
--- config
    location = /phases {
        set_by_lua_block $set { return tostring(require("resty.leader_election").is_leader()) }
        rewrite_by_lua_block { ngx.ctx.p = "rewrite=" .. tostring(require("resty.leader_election").fencing_token()) }
        access_by_lua_block { ngx.ctx.p = ngx.ctx.p .. " access=" .. require("resty.leader_election").state().route }
        content_by_lua_block { ngx.say("set=", ngx.var.set, " ", ngx.ctx.p, " content=", require("resty.leader_election").state("b").holder) }
        header_filter_by_lua_block { ngx.header["X-Leader"] = tostring(require("resty.leader_election").is_leader()) }
        body_filter_by_lua_block {
            if ngx.arg[2] then
                ngx.arg[1] = (ngx.arg[1] or "") .. "body_filter=" .. tostring(require("resty.leader_election").fencing_token("web")) .. "\n"
            end
        }
        log_by_lua_block { ngx.log(ngx.NOTICE, "log phase: is_leader=", require("resty.leader_election").is_leader()) }
    }
--- init
wait_until(5, sub { body('/phases') =~ /set=true/ });
my $t = main::term();
is(body('/phases'), "set=true rewrite=$t access=self content=boss\n"
   . "body_filter=$t\n", "the Lease's term ($t) in every phase");
--- request
GET /phases
--- response_headers
X-Leader: true
--- response_body_like
^set=true rewrite=(\d+) access=self content=boss\nbody_filter=\1$
--- error_log
log phase: is_leader=true
--- no_error_log
[error]
[alert]
[crit]



=== TEST 5: a step down: false, nil and an empty route while the Lease still names us
--- init
add_fault(kind => 'status', code => 500, method => 'PUT', path => '/leases/l-lead');
ok(wait_until(5, sub { body('/phases') =~ /set=false/ }), 'stepped down');
--- request
GET /phases
--- response_headers
X-Leader: false
--- response_body
set=false rewrite=nil access= content=boss
body_filter=nil
--- no_error_log
[error]
[alert]
[crit]



=== TEST 6: the singleton-job recipe of docs/lua.md: runs while leading, with the token, and stops
--- http_config eval
main::election('job', 'l-job') . <<'_EOC_';
    lua_shared_dict jobs 1m;
    init_worker_by_lua_block {
        local le = require "resty.leader_election"

        -- the guarded system: remembers the highest token, refuses lower
        local function do_the_job(token)
            local dict = ngx.shared.jobs
            if token < (dict:get("highest") or 0) then
                return nil, "stale token"
            end
            dict:set("highest", token)
            dict:incr("runs:" .. token, 1, 0)
            return true
        end

        -- docs/lua.md's recipe, with a 0.1 s period
        if ngx.worker.id() ~= 0 then
            return
        end

        local function run(premature)
            if premature then
                return
            end

            local token = le.fencing_token("job")
            if token then
                local ok, err = do_the_job(token)
                if not ok then
                    ngx.log(ngx.ERR, "job: ", err)
                end

                if le.fencing_token("job") ~= token then
                    ngx.log(ngx.WARN, "job: leadership lost during the ",
                            "run of term ", token)
                end
            end

            local ok, err = ngx.timer.at(0.1, run)
            if not ok then
                ngx.log(ngx.ERR, "job: cannot schedule the next run: ", err)
            end
        end

        ngx.timer.at(0, run)
    }
_EOC_
--- config
    location = /jobs {
        content_by_lua_block {
            local d = ngx.shared.jobs
            ngx.say("highest=", d:get("highest"), " runs>0=",
                    tostring((d:get("runs:1") or 0) > 0))
        }
    }
    location = /runs {
        content_by_lua_block { ngx.say(ngx.shared.jobs:get("runs:1")) }
    }
    location = /leader { leader_election_status; }
--- init
ok(wait_until(5, sub { body('/jobs') eq "highest=1 runs>0=true\n" }),
   'the job runs, with token 1');
add_fault(kind => 'status', code => 500, method => 'PUT', path => '/leases/l-job');
ok(wait_until(5, sub { my $s = nginx_status(); $s && !$s->{is_leader} }),
   'stepped down');
sleep 0.3;    # a run that had checked before ends
my $runs = body('/runs');
sleep 1;
is(body('/runs'), $runs, 'no run once not leading');
--- request
GET /jobs
--- response_body
highest=1 runs>0=true
--- no_error_log
[error]
[alert]
[crit]



=== TEST 7: no such election; not in init_by_lua; a name that is not a string
--- http_config eval
$main::Elections . <<'_EOC_';
    init_by_lua_block {
        local le = require "resty.leader_election"
        local ok, err = pcall(le.is_leader)
        INIT_ERR = err
    }
_EOC_
--- config
    location = /errors {
        content_by_lua_block {
            local le = require "resty.leader_election"
            ngx.say(select(2, pcall(le.is_leader, "nope")))
            ngx.say(select(2, pcall(le.state, 42)))
            ngx.say(INIT_ERR)
        }
    }
--- request
GET /errors
--- response_body
resty.leader_election: no leader_election "nope" is defined in http{}
resty.leader_election: the election name must be a string, not a number
resty.leader_election: not available in init_by_lua*: the elections' state is read from init_worker_by_lua* on
--- no_error_log
[error]
[alert]
[crit]



=== TEST 8: our module not loaded: a clear error, not a crash
--- config
    location = /t { return 200; }
--- init
my $b = do {
    local $ENV{TEST_NGINX_LOAD_MODULES} = '';
    Kle::Nginx->new(name => 'nomod', master => 1,
        main_config => Kle::Lua::lua_modules(),
        http_config => "lua_package_path \"$ENV{TEST_NGINX_LUA_DIR}/?.lua;;\";",
        config => <<'_EOC_')->start;
    location = /t {
        content_by_lua_block {
            local le = require "resty.leader_election"
            ngx.say(select(2, pcall(le.is_leader)))
            ngx.say(select(2, pcall(le.state, "web")))
        }
    }
_EOC_
};
my ($code, $got) = $b->get('/t');
like($got, qr/^[^\n]*resty\.leader_election: ngx_http_leader_election_module is not loaded \(add "load_module modules\/ngx_http_leader_election_module\.so;" to nginx\.conf\)\n[^\n]*is not loaded/,
     'says the module is not loaded, twice');
unlike($b->error_log, qr/\[(?:alert|crit|emerg)\]/, 'nothing worse in its log');
$b->stop;
--- request
GET /t
--- response_body
--- no_error_log
[error]
[alert]
[crit]
