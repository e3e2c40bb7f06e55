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
# missing(): why Lua cannot run here (no such modules for this nginx, for
# example a mainline build, whose ABI Debian's modules do not match), else
# undef.  lua_modules(): the load_module lines, for Kle::Nginx instances.

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(dirname);
use File::Spec ();

our @EXPORT_OK = qw(missing lua_modules);

my $Lua = File::Spec->rel2abs(
    File::Spec->catdir(dirname(__FILE__), '..', '..', '..', 'lua'));
$ENV{TEST_NGINX_LUA_DIR} = $Lua;

my $Binary = $ENV{TEST_NGINX_BINARY} || 'nginx';
my $Missing;
my @Modules;

{
    my $v = `$Binary -V 2>&1` // '';
    my ($dir) = $v =~ /--modules-path=(\S+)/;
    $dir = $ENV{TEST_NGINX_LUA_MODULES_DIR} // $dir // '/usr/lib/nginx/modules';
    @Modules = map { "$dir/$_" } qw(ndk_http_module.so ngx_http_lua_module.so);
    my @absent = grep { !-f } @Modules;
    if (@absent) {
        $Missing = "no @absent (Debian: apt-get install libnginx-mod-http-lua "
                   . "lua-resty-core)";
    } elsif ($v !~ /nginx\/1\.22\./ && !$ENV{TEST_NGINX_LUA_MODULES_DIR}) {
        $Missing = "$Binary is not Debian's nginx 1.22, whose ABI Debian's "
                   . "lua module was built for";
    }
}

sub missing () { $Missing }

sub lua_modules () { join '', map { "load_module $_;\n" } @Modules }

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
