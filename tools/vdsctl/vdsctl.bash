# bash completion for vdsctl(8)                             -*- shell-script -*-
#
# Installed as bash-completion/completions/vdsctl, which bash-completion loads the
# first time vdsctl is completed; it needs none of bash-completion's helpers, so
# sourcing it into a plain bash works as well.
#
# Completes vdsctl's own options, the commands, each command's options, datastore
# names (after --to and in PATH=NAME), paths inside the mount (where, migrate) and
# migration ids (status: any listed, cancel: active ones). Names and ids come from
# the daemon, asked with the -m/-s given earlier on the line (nothing is asked
# without them) through the vdsctl being completed, each answer within 2 s.
# Paths follow vdsctl's rule: relative to the current directory inside the mount,
# else to the mount root (known from -m; with -s alone paths are not completed).

# vdsctl with the line's -m/-s and the given arguments; stdout only.
_vdsctl_ask()
{
    local -a limit=()
    ((${#_vdsctl_conn[@]})) || return 0
    command -v timeout >/dev/null && limit=(timeout 2)
    "${limit[@]}" "$_vdsctl_exe" "${_vdsctl_conn[@]}" "$@" 2>/dev/null
}

# Migration ids from `status --json`; with "active", only those not yet ended.
# json-c writes one key per line, "id" first and "phase" later in each object,
# and a key never starts a line inside a string (newlines there are escaped).
_vdsctl_ids()
{
    local line id=
    while IFS= read -r line; do
        if [[ $line =~ ^[[:space:]]*\"id\":[[:space:]]*([0-9]+) ]]; then
            id=${BASH_REMATCH[1]}
        elif [[ $id && $line =~ ^[[:space:]]*\"phase\":[[:space:]]*\"([a-z]+)\" ]]; then
            case $1:${BASH_REMATCH[1]} in
                active:done | active:failed | active:cancelled) ;;
                *) printf '%s\n' "$id" ;;
            esac
            id=
        fi
    done < <(_vdsctl_ask status --json)
}

# Paths for the argument $1 by vdsctl's rule, directories with a trailing '/'; bash
# replaces only the part after a ':' or '=' in it, so the first $2 bytes are cut
# from each. $3 "nospace": no space after a file either (migrate: =NAME may follow).
_vdsctl_paths()
{
    local arg=$1 cut=$2 root here base c full dirs=0
    [[ $_vdsctl_mount ]] || return 0
    root=$(cd -- "$_vdsctl_mount" 2>/dev/null && pwd -P) || return 0
    here=$(pwd -P)
    if [[ $arg == /* || $here == "$root" || $here == "$root"/* ]]; then
        base=
    else
        base=${root%/}/
    fi
    while IFS= read -r full; do
        c=${full#"$base"}
        [[ -d $full ]] && c+=/ && ((dirs++))
        printf -v c '%q' "${c:cut}"
        COMPREPLY+=("$c")
    done < <(compgen -f -- "$base$arg")
    if [[ $3 == nospace ]] || ((dirs)); then
        compopt -o nospace
    fi
}

_vdsctl_words() # COMPREPLY from a word list and cur
{
    local w
    while IFS= read -r w; do
        [[ $w ]] && COMPREPLY+=("$w")
    done < <(compgen -W "$1" -- "$2")
}

_vdsctl()
{
    local cur=$2 i w cmd= glued=0 prev curarg
    local -a args=() cmdargs=()
    local _vdsctl_exe=${COMP_WORDS[0]} _vdsctl_mount=
    local -a _vdsctl_conn=()
    COMPREPLY=()
    [[ $_vdsctl_exe == "~"/* ]] && _vdsctl_exe=$HOME/${_vdsctl_exe#"~"/}

    # The words as vdsctl gets them: bash splits at '=' and ':', glue them back.
    for ((i = 1; i <= COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        if ((${#args[@]})) && [[ $glued == 1 || $w == = || $w == : ]]; then
            args[${#args[@]} - 1]+=$w
        else
            args+=("$w")
        fi
        [[ $w == = || $w == : ]] && glued=1 || glued=0
    done
    curarg=${args[${#args[@]} - 1]}
    unset 'args[${#args[@]}-1]'

    # vdsctl's own options, up to the command.
    for ((i = 0; i < ${#args[@]}; i++)); do
        w=${args[i]}
        if [[ $cmd ]]; then
            cmdargs+=("$w")
            continue
        fi
        case $w in
            -m | --mount | -s | --socket)
                ((i + 1 < ${#args[@]})) || break
                ((i++))
                _vdsctl_conn+=("$w" "${args[i]}")
                [[ $w == -m || $w == --mount ]] && _vdsctl_mount=${args[i]}
                ;;
            --mount=* | -m?*)
                _vdsctl_conn+=("$w")
                _vdsctl_mount=${w#--mount=}
                _vdsctl_mount=${_vdsctl_mount#-m}
                ;;
            --socket=* | -s?*) _vdsctl_conn+=("$w") ;;
            -h | --help | -V | --version) return 0 ;;
            --) ((i + 1 < ${#args[@]})) && cmd=${args[++i]} ;;
            -*) ;;
            *) cmd=$w ;;
        esac
    done
    [[ $_vdsctl_mount == "~"/* ]] && _vdsctl_mount=$HOME/${_vdsctl_mount#"~"/}
    prev=
    ((${#args[@]})) && prev=${args[${#args[@]} - 1]}

    if [[ -z $cmd ]]; then
        case $prev:$curarg in
            -m:* | --mount:* | *:--mount=*)
                compopt -o filenames
                mapfile -t COMPREPLY < <(compgen -d -- "$cur")
                return 0
                ;;
            -s:* | --socket:* | *:--socket=*)
                compopt -o filenames
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                return 0
                ;;
        esac
        if [[ $cur == -* ]]; then
            _vdsctl_words "-m -s -h -V --mount --socket --help --version" "$cur"
        else
            _vdsctl_words "datastores where migrate status cancel events" "$cur"
        fi
        return 0
    fi

    case $cmd in
        datastores)
            [[ ${cmdargs[*]} == *--* ]] || _vdsctl_words "--json --names" "$cur"
            ;;
        where)
            if [[ $cur == -* ]]; then
                ((${#cmdargs[@]})) || _vdsctl_words "--json" "$cur"
            else
                _vdsctl_paths "$curarg" $((${#curarg} - ${#cur}))
            fi
            ;;
        migrate)
            if [[ $prev == --to ]]; then
                _vdsctl_words "$(_vdsctl_ask datastores --names)" "$cur"
            elif [[ $prev == --parallel || $prev == --bwlimit || $prev == --space-margin ]]; then
                return 0
            elif [[ $curarg != -* && $curarg == *=* ]]; then
                _vdsctl_words "$(_vdsctl_ask datastores --names)" "$cur"
            elif [[ $cur == -* ]]; then
                _vdsctl_words "--wait --parallel --bwlimit --space-margin --no-space-check --to" "$cur"
            else
                _vdsctl_paths "$curarg" $((${#curarg} - ${#cur})) nospace
            fi
            ;;
        status)
            if [[ $cur == -* ]]; then
                _vdsctl_words "--json --watch" "$cur"
            elif [[ " ${cmdargs[*]} " != *" "[0-9]* ]]; then
                _vdsctl_words "$(_vdsctl_ids)" "$cur"
            fi
            ;;
        cancel)
            ((${#cmdargs[@]})) || _vdsctl_words "$(_vdsctl_ids active)" "$cur"
            ;;
    esac
    return 0
}
complete -F _vdsctl vdsctl
