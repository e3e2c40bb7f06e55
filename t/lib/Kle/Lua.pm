package Kle::Lua;

# Lua blocks (lua-nginx-module) in Test::Nginx suites, under either
# harness, with Debian's modules: libnginx-mod-http-ndk and
# libnginx-mod-http-lua (ngx_http_lua_module.so needs ndk_http_module.so
# loaded before it), lua-resty-core from /usr/share/lua/5.1.  Loaded after
# Kle::Emulator, before Test::Nginx::Socket.
#
# Every block that starts nginx gets, after TEST_NGINX_LOAD_MODULES, the load_module lines
# of both modules, and in http{} a lua_package_path that finds this
# repository's lua/ first: require "resty.leader_election" loads the file
# under test, not an installed one.  $TEST_NGINX_LUA_DIR is that lua/.
#
# missing(): why Lua cannot run here (the modules are not installed, or
# this nginx cannot load them: "nginx -t" says why, e.g. for a mainline
# build, whose version Debian's modules do not match), else undef.  An
# nginx that cannot load the modules of its own modules directory (Debian's
# nginx and libnginx-mod-http-lua) dies instead: that is a failure.
# lua_modules(): the load_module lines, for Kle::Nginx instances.

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec ();

use Kle::Harness ();

our @EXPORT_OK = qw(missing lua_modules);

my $Lua = File::Spec->rel2abs(
    File::Spec->catdir(dirname(__FILE__), '..', '..', '..', 'lua'));
$ENV{TEST_NGINX_LUA_DIR} = $Lua;

my $Binary = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $Missing;
my @Modules;

sub lua_modules () { join '', map { "load_module $_;\n" } @Modules }

{
    my $v = `$Binary -V 2>&1` // '';
    my ($dir) = $v =~ /--modules-path=(\S+)/;
    $dir = $ENV{TEST_NGINX_LUA_MODULES_DIR} // $dir // '/usr/lib/nginx/modules';
    @Modules = map { "$dir/$_" } qw(ndk_http_module.so ngx_http_lua_module.so);
    my @absent = grep { !-f } @Modules;
    if (@absent) {
        $Missing = "no @absent (Debian: apt-get install libnginx-mod-http-lua "
                   . "lua-resty-core)";
    } else {
        # they load only into the nginx they were built for (Debian's,
        # not a mainline build): ask that nginx
        my ($st, $out) = Kle::Harness::nginx_t(
            lua_modules() . "events {}\n"
            . "http { init_by_lua_block { require 'resty.core' } }\n");
        if ($st != 0) {
            my ($line) = grep { /emerg|error/ } split /\n/, $out;
            $line //= $out;
            # in this nginx's own modules directory: a failure, not a skip
            die "Kle::Lua: $Binary cannot load its own lua module: $line\n"
                if $v =~ /--modules-path=\Q$dir\E(\s|$)/;
            $Missing = "$Binary cannot load Debian's lua module: $line";
        }
    }
}

sub missing () { $Missing }

require Test::Nginx::Util;

Test::Nginx::Util::add_block_preprocessor(sub {
    my $block = shift;

    return unless defined $block->config;   # keeps the running nginx

    $block->set_value('main_config',
                      lua_modules() . ($block->main_config // ''));
    $block->set_value('http_config',
                      "    lua_package_path \"$Lua/?.lua;;\";\n"
                      . ($block->http_config // ''));
});

1;
