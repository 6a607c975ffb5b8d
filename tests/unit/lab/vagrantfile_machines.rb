# Renders a Vagrantfile's settings as JSON, without Vagrant or any provider: a stand-in
# `Vagrant.configure` records what the file sets on the config, on each machine it defines and
# in each provider block. An unknown method on `vm` stops it with Ruby's NoMethodError.
#
#   ruby vagrantfile_machines.rb Vagrantfile
require "json"

# Provider and ssh settings: `lv.memory = 512` records memory; `lv.serial type: ...` records a call.
class Settings
  attr_reader :data

  def initialize
    @data = {}
  end

  def method_missing(name, *args, **options, &block)
    key = name.to_s
    return @data[key.chomp("=")] = args.first if key.end_with?("=")
    return @data[key] if args.empty? && options.empty? && block.nil?
    (@data[key] ||= []) << (options.empty? ? args : args + [options])
    nil
  end

  def respond_to_missing?(*)
    true
  end
end

# `config.vm` and `machine.vm`: the box, the hostname, networks, folders, machines and providers.
class VM
  attr_reader :data, :machines, :providers, :networks, :provisioners

  def initialize(owner)
    @owner = owner
    @data = {}
    @machines = {}
    @providers = Hash.new { |h, k| h[k] = Settings.new }
    @networks = []
    @provisioners = []
  end

  def box=(value)
    @data["box"] = value
  end

  def hostname=(value)
    @data["hostname"] = value
  end

  def define(name, **_options)
    machine = Config.new
    yield machine if block_given?
    @machines[name.to_s] = machine
  end

  def provider(name)
    yield @providers[name.to_s], @owner
  end

  def network(type, **options)
    @networks << [type.to_s, options]
  end

  def synced_folder(*args, **options)
    (@data["synced_folders"] ||= []) << args + [options]
  end

  def provision(*args, **options)
    @provisioners << args + [options]
  end
end

class Config
  attr_reader :vm, :ssh

  def initialize
    @vm = VM.new(self)
    @ssh = Settings.new
  end

  def to_h
    { "box" => @vm.data["box"], "hostname" => @vm.data["hostname"], "networks" => @vm.networks,
      "synced_folders" => @vm.data["synced_folders"] || [], "provisioners" => @vm.provisioners,
      "ssh" => @ssh.data, "providers" => @vm.providers.transform_values(&:data),
      "machines" => @vm.machines.transform_values(&:to_h) }
  end
end

module Vagrant
  def self.configure(_version)
    config = Config.new
    yield config
    puts JSON.pretty_generate(config.to_h)
  end
end

load ARGV.fetch(0)
